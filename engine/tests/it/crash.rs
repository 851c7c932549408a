//! The crash test: `invoiceflow run` with 10,000 reminders falling due, SIGKILLed at ten random
//! moments and restarted each time, on SQLite and on PostgreSQL. At the end every reminder is
//! delivered to the sink, none lost, and no key twice except the re-send of an attempt that was in
//! flight at a kill (same key, same attempt number).
//!
//! The moments come from a printed seed (`INVOICEFLOW_TEST_SEED=N` replays them): the first a
//! random time into the first engine's life (its planning pass, or its first deliveries), the
//! other nine random numbers of lines in the sink. A restarted engine has a new node name, as a
//! restarted process has, so the deliveries its predecessor held wait for their lease to run
//! out: the engines run with `--lease 2`.

use std::time::{Duration, Instant};

use crate::fleet::{DEADLINE, Engine, Killed, REMINDERS, Rng, Sink, Workload, seed, verify};

const KILLS: usize = 10;
const LEASE_SECONDS: u32 = 2;

#[tokio::test]
async fn sqlite_every_reminder_delivered_once_through_ten_kills() {
    crash(Workload::sqlite().await).await;
}

#[tokio::test]
async fn postgres_every_reminder_delivered_once_through_ten_kills() {
    let Some(workload) = Workload::postgres("crash").await else { return };
    crash(workload).await;
}

async fn crash(mut w: Workload) {
    let seed = seed();
    println!("crash test on {}: seed {seed} (INVOICEFLOW_TEST_SEED={seed} replays its moments)", w.backend);
    let mut rng = Rng::new(seed);
    let first = Duration::from_millis(rng.range(100, 1500));
    let mut targets: Vec<usize> = (1..KILLS).map(|_| rng.range(1, REMINDERS as u64) as usize).collect();
    targets.sort_unstable();

    let mut sink = Sink::new(w.sink_path());
    let started = Instant::now();
    let mut kills: Vec<Killed> = Vec::new();
    for k in 0..KILLS {
        let mut engine = w.spawn(&format!("crash-{}", k + 1), LEASE_SECONDS);
        let spawned = Instant::now();
        loop {
            let lines = sink.read();
            let due = if k == 0 { spawned.elapsed() >= first } else { lines >= targets[k - 1] };
            if due {
                break;
            }
            engine.assert_running(&w);
            assert!(started.elapsed() < DEADLINE, "kill {} never came: {lines} sink lines\n{}", k + 1, w.report());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        kills.push(kill(&w, engine, started, &mut sink).await);
    }
    let killed_at = started.elapsed();
    let mut last = w.spawn(&format!("crash-{}", KILLS + 1), LEASE_SECONDS);
    w.wait_until_delivered(&mut [&mut last], &mut sink).await;
    let elapsed = started.elapsed();
    last.kill();
    sink.read();

    for k in &kills {
        println!(
            "  killed {} at {:.2} s, {} sink lines, {} deliveries leased and unfinished",
            k.node,
            k.at.as_secs_f64(),
            k.lines,
            k.in_flight.len()
        );
    }
    let verified = verify(&w, &sink, &kills).await;
    println!(
        "crash test on {}: {REMINDERS} delivered in {:.1} s (the last kill at {:.1} s; {:.0} deliveries/s overall), \
         {} sink lines, {} duplicates (re-sent in-flight attempts); attempts recorded per node: {:?}",
        w.backend,
        elapsed.as_secs_f64(),
        killed_at.as_secs_f64(),
        REMINDERS as f64 / elapsed.as_secs_f64(),
        verified.lines,
        verified.duplicates,
        verified.by_node
    );
    w.finish().await;
}

/// SIGKILLs `engine` and records what it held then.
async fn kill(w: &Workload, engine: Engine, started: Instant, sink: &mut Sink) -> Killed {
    let node = engine.node.clone();
    engine.kill();
    let at = started.elapsed();
    let lines = sink.read();
    let in_flight = w.leased_by(&node).await;
    Killed { node, at, lines, in_flight }
}
