//! The example pipelines under fss2pc over the `tcp` transport: mutually authenticated TLS on
//! loopback, every endpoint in this process, with the answers of the in-memory run.

use crate::support::{root, rt};
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::Endpoint;
use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_transport_tcp::{DEALER, TcpConfig, TcpTransport, generate_deployment_certs};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// One `tcp` transport per endpoint (each with its own certificate), dispatched by endpoint.
struct Deployment {
    parties: Vec<String>,
    by_name: BTreeMap<String, TcpTransport>,
}

impl Deployment {
    fn new(parties: &[&str]) -> Deployment {
        let mut names: Vec<&str> = parties.to_vec();
        names.push(DEALER);
        let (ca, certs) = generate_deployment_certs(&names).unwrap();
        let addrs: BTreeMap<String, SocketAddr> = names
            .iter()
            .map(|n| (n.to_string(), TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()))
            .collect();
        let by_name = certs
            .into_iter()
            .map(|c| {
                let t = TcpTransport::new(TcpConfig::new(addrs.clone(), c.cert_pem, c.key_pem, ca.clone())).unwrap();
                (c.name, t)
            })
            .collect();
        Deployment { parties: parties.iter().map(|s| s.to_string()).collect(), by_name }
    }
}

impl Transport for Deployment {
    fn name(&self) -> &str {
        "tcp-loopback"
    }
    fn connect(&self, session: &SessionInfo, me: Endpoint) -> mpcflow_sdk::Result<Box<dyn Link>> {
        let name = match me {
            Endpoint::Party(p) => self.parties[p.index()].clone(),
            Endpoint::Dealer => DEALER.to_string(),
        };
        self.by_name[&name].connect(session, me)
    }
}

fn session(file: &str, parties: &[&str], transport: Option<&str>) -> Session {
    let mut reg = mpcflow::builtins();
    reg.add_transport(Arc::new(Deployment::new(parties)));
    let cfg = SessionConfig { transport: transport.unwrap_or("mem").into(), ..Default::default() };
    Session::from_path(&root().join("graphs").join(file), reg).unwrap().with_config(cfg)
}

#[test]
fn example_graphs_over_tls_give_the_in_memory_answers() {
    let rt = rt();
    let mill = |t| session("millionaires.yaml", &["alice", "bob"], t);
    let inputs = || [("alice_wealth", InputValue::from(7_000_001i64)), ("bob_wealth", InputValue::from(7_000_000i64))];
    let over_tls = rt.block_on(mill(Some("tcp-loopback")).run(inputs())).unwrap();
    let in_mem = rt.block_on(mill(None).run(inputs())).unwrap();
    assert_eq!(over_tls.values("alice_richer"), Some(vec![1.0]));
    assert_eq!(over_tls.report.totals.bytes_sent, in_mem.report.totals.bytes_sent);

    let col =
        |f: &str| mpcflow::io::input_arg::read_csv_column(&root().join("graphs/data").join(f), "systolic_bp").unwrap();
    let inputs = || [("north_bp", col("north.csv")), ("south_bp", col("south.csv"))];
    let hosp = |t| session("hospital_stats.yaml", &["north", "south"], t);
    let over_tls = rt.block_on(hosp(Some("tcp-loopback")).run(inputs())).unwrap();
    let in_mem = rt.block_on(hosp(None).run(inputs())).unwrap();
    // fss2pc's results do not depend on its randomness (truncation is exact): equal answers.
    for name in ["n_patients", "n_high", "mean_bp", "var_bp"] {
        assert_eq!(over_tls.values(name), in_mem.values(name), "{name}");
    }
    for n in &over_tls.report.nodes {
        assert_eq!(n.bytes_sent, n.predicted_bytes_sent, "{}", n.name);
    }
}
