//! The multi-node test: three `invoiceflow run` processes on one PostgreSQL schema share 10,000
//! reminders; one of them, drawn from a printed seed, is SIGKILLed mid-run (when a random share of
//! the reminders is in the sink); the survivors take its leases over once they run out and finish.
//! Each key reaches the sink, and the outbox shows each delivery made by exactly one successful
//! attempt of one node; a key received twice is only the killed node's in-flight attempt, re-sent.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::{DEADLINE, Killed, REMINDERS, Rng, Sink, Workload, postgres_schema, seed, verify};

/// Long enough for a round (a batch of 100) to finish under load, short enough for the test.
const LEASE_SECONDS: u32 = 5;
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

#[tokio::test]
async fn three_nodes_one_killed_mid_run_deliver_each_key_once() {
    let Some(mut w) = Workload::postgres("multinode").await else { return };
    let seed = seed();
    let mut rng = Rng::new(seed);
    let victim = rng.range(0, NODES.len() as u64) as usize;
    let target = rng.range(REMINDERS as u64 / 5, REMINDERS as u64 * 3 / 5) as usize;
    println!(
        "multi-node test: seed {seed} (INVOICEFLOW_TEST_SEED={seed} replays it): {} killed at {target} sink lines",
        NODES[victim]
    );

    let mut sink = Sink::new(w.sink_path());
    let started = Instant::now();
    let mut engines: Vec<_> = NODES.iter().map(|node| w.spawn(node, LEASE_SECONDS)).collect();
    while sink.read() < target {
        for engine in &mut engines {
            engine.assert_running(&w);
        }
        assert!(started.elapsed() < DEADLINE, "{target} sink lines never came: {}\n{}", sink.lines.len(), w.report());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let engine = engines.remove(victim);
    let node = engine.node.clone();
    engine.kill();
    let killed = Killed { at: started.elapsed(), lines: sink.read(), in_flight: w.leased_by(&node).await, node };
    let (_, delivered) = w.progress().await;
    assert!((delivered as usize) < REMINDERS, "killed after everything was delivered: not mid-run");
    println!(
        "  killed {} at {:.2} s: {} sink lines, {delivered} delivered, {} deliveries leased and unfinished",
        killed.node,
        killed.at.as_secs_f64(),
        killed.lines,
        killed.in_flight.len()
    );

    let mut survivors: Vec<_> = engines.iter_mut().collect();
    w.wait_until_delivered(&mut survivors, &mut sink).await;
    let elapsed = started.elapsed();
    drop(engines);
    sink.read();

    let verified = verify(&w, &sink, std::slice::from_ref(&killed)).await;
    let keys = w.expected().len();
    println!(
        "multi-node test: {keys} distinct keys delivered once each in {:.1} s ({:.0} deliveries/s), {} sink lines, \
         {} duplicates (the killed node's in-flight attempts re-sent); successful attempts per node: {:?}",
        elapsed.as_secs_f64(),
        REMINDERS as f64 / elapsed.as_secs_f64(),
        verified.lines,
        verified.duplicates,
        verified.by_node
    );
    for node in NODES.iter().filter(|n| **n != killed.node) {
        assert!(verified.by_node.get(*node).is_some_and(|n| *n > 0), "survivor {node} delivered nothing");
    }
    w.finish().await;
}

/// Several nodes starting at once on a new database each migrate it: none may fail for the
/// others' doing it at the same moment.
#[tokio::test]
async fn nodes_starting_at_once_on_a_new_database_all_migrate_it() {
    let Some((admin, schema, database)) = postgres_schema("migrate_race").await else { return };
    let dir = tempfile::TempDir::new().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_invoiceflow"))
                .args(["--database", &database, "migrate"])
                .current_dir(dir.path())
                .env_remove("INVOICEFLOW_CONFIG")
                .env_remove("INVOICEFLOW_DATABASE_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a node failed to migrate {schema} alongside the others: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = $1")
        .bind(&schema)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(tables > 5, "{schema} holds {tables} tables");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE"))).execute(&admin).await.unwrap();
}
