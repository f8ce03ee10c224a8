//! How the FSS core's errors reach the runtime: a malformed key is bad dealer material, a
//! failing entropy source is an internal error, anything else an invalid argument.

use crate::fss::FssError;
use mpcflow_sdk::Error;

/// The sdk error for an error of the FSS core.
pub fn fss_error(e: FssError) -> Error {
    match e {
        FssError::MalformedKey { .. } => Error::Material(e.to_string()),
        FssError::Entropy(_) => Error::internal(e.to_string()),
        other => Error::invalid(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_convert_to_sdk_errors() {
        let e = fss_error(FssError::MalformedKey { kind: "DCF", reason: "x".into() });
        assert!(matches!(e, Error::Material(_)));
        assert!(matches!(fss_error(FssError::InvalidParty(3)), Error::Invalid(_)));
        assert!(matches!(fss_error(FssError::Entropy("x".into())), Error::Internal(_)));
    }
}
