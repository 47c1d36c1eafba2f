use sim::{Cluster, SimOptions};

#[test]
fn smoke() {
    let mut cluster = Cluster::new(SimOptions::new(1, 3).with_clients(3));
    cluster
        .run_until("a leader", |c| c.leader().is_some(), 5_000)
        .unwrap();
    cluster.run_for(5_000);
    let summary = cluster.check();
    println!("{:?}", summary);
    println!("{}", summary.counters);
    assert!(summary.ops_completed > 10);
}
