//! Helpers for reading configuration files with serde, shared by the runtime's pipeline files
//! and plugins' own files (a transport's deployment file, say).

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::marker::PhantomData;

/// A mapping kept in file order with duplicate keys kept too, so that a validator can report a
/// key given twice with both places (a `HashMap` would keep one silently).
///
/// ```
/// # use mpcflow_sdk::config::Entries;
/// # use serde::de::{value::MapDeserializer, IntoDeserializer};
/// # use serde::Deserialize;
/// let pairs = vec![("a", 1), ("b", 2), ("a", 3)];
/// let de = MapDeserializer::<_, serde::de::value::Error>::new(pairs.into_iter());
/// let e: Entries<String, i32> = Entries::deserialize(de).unwrap();
/// assert_eq!(e.0, vec![("a".into(), 1), ("b".into(), 2), ("a".into(), 3)]);
/// ```
#[derive(Debug)]
pub struct Entries<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Vis<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}
