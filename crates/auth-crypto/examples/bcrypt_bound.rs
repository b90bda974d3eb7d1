//! The bcrypt bound for `scripts/bench.py`: how many password checks per second this machine
//! can do at a cost, whatever the service around them.
//!
//! `cargo run --release -p auth-crypto --example bcrypt_bound -- COST [SECONDS]`
//!
//! Prints one JSON line: `hash_ms` (median time of one hash on one thread, machine otherwise
//! idle), `cores`, `bound_per_s` (cores ÷ one hash time, the definition) and
//! `parallel_per_s` (what every core hashing at once really did, for comparison). The input is
//! what the service hashes: 64 characters (the keyed pre-hash of a password).

use std::time::{Duration, Instant};

const INPUT: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let cost: u32 = args
        .next()
        .ok_or("usage: bcrypt_bound COST [SECONDS]")?
        .parse()?;
    let seconds: f64 = args.next().map_or(Ok(3.0), |s| s.parse())?;
    let budget = Duration::from_secs_f64(seconds);
    let hash = bcrypt::hash(INPUT, cost)?;

    // One thread: the time of one check (a login verifies, which costs what hashing costs).
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3 || (started.elapsed() < budget / 2 && times.len() < 1000) {
        let one = Instant::now();
        if !bcrypt::verify(INPUT, &hash)? {
            return Err("bcrypt::verify refused its own hash".into());
        }
        times.push(one.elapsed());
    }
    times.sort();
    let one_hash = times[times.len() / 2];
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);

    // Every core at once, for comparison with the formula.
    let until = Instant::now() + budget / 2;
    let started = Instant::now();
    let done: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                let hash = &hash;
                scope.spawn(move || {
                    let mut n = 0usize;
                    while Instant::now() < until || n == 0 {
                        if bcrypt::verify(INPUT, hash).unwrap_or(false) {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    let parallel = done as f64 / started.elapsed().as_secs_f64();
    let hash_s = one_hash.as_secs_f64();
    println!(
        "{{\"cost\":{cost},\"hash_ms\":{:.3},\"cores\":{cores},\"bound_per_s\":{:.1},\"parallel_per_s\":{:.1}}}",
        hash_s * 1000.0,
        cores as f64 / hash_s,
        parallel
    );
    Ok(())
}
