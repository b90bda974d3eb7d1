//! The signing bound for `scripts/bench.py`: how many access tokens per second this machine
//! can sign (and check) with an algorithm, whatever the service around them.
//!
//! `cargo run --release -p auth-crypto --example sign_bound -- ALG [SECONDS]`
//! (ALG: HS256, RS256, ES256, EdDSA)
//!
//! Prints one JSON line: `sign_us` and `verify_us` (median time of one, on one thread, the
//! verification in full, as with `JWT_VERIFY_CACHE=0`), `cores`, and `sign_bound_per_s`
//! (cores ÷ one signature: the most token-issuing requests per second — a refresh signs
//! one access token, a login two tokens — before any other work).

use std::time::{Duration, Instant};

use auth_crypto::{Asymmetric, JwtCodec, generate_key_pair};
use auth_domain::model::AccessClaims;
use auth_domain::ports::TokenCodec;
use auth_domain::types::{SessionId, UserId};
use secrecy::ExposeSecret;
use uuid::Uuid;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let alg = args.next().ok_or("usage: sign_bound ALG [SECONDS]")?;
    let seconds: f64 = args.next().map_or(Ok(1.0), |s| s.parse())?;
    let codec = match alg.as_str() {
        "HS256" => JwtCodec::hs256(&[7; 32], "bench", "bench")?,
        other => {
            let asym = match other {
                "RS256" => Asymmetric::Rs256,
                "ES256" => Asymmetric::Es256,
                "EdDSA" => Asymmetric::EdDsa,
                _ => return Err(format!("unknown algorithm {other}").into()),
            };
            let key = generate_key_pair(asym)?;
            JwtCodec::asymmetric(
                asym,
                key.private_pem.expose_secret(),
                None,
                "bench",
                "bench",
            )?
        }
    };
    let now = chrono::Utc::now();
    let claims = AccessClaims {
        user_id: UserId(Uuid::now_v7()),
        session_id: SessionId(Uuid::now_v7()),
        jti: Uuid::now_v7(),
        username: "bench".into(),
        issued_at: now,
        expires_at: now + chrono::TimeDelta::minutes(15),
    };
    let budget = Duration::from_secs_f64(seconds / 2.0);
    let (mut signs, mut checks) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut token = String::new();
    while signs.len() < 5 || (started.elapsed() < budget && signs.len() < 100_000) {
        let one = Instant::now();
        token = codec.issue_access(&claims)?;
        signs.push(one.elapsed());
    }
    let started = Instant::now();
    while checks.len() < 5 || (started.elapsed() < budget && checks.len() < 100_000) {
        let one = Instant::now();
        codec
            .verify_access(&token, now)
            .map_err(|e| format!("{e:?}"))?;
        checks.push(one.elapsed());
    }
    let (sign, check) = (median(signs), median(checks));
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "{{\"alg\":\"{alg}\",\"sign_us\":{:.1},\"verify_us\":{:.1},\"cores\":{cores},\"sign_bound_per_s\":{:.0}}}",
        sign.as_secs_f64() * 1e6,
        check.as_secs_f64() * 1e6,
        cores as f64 / sign.as_secs_f64()
    );
    Ok(())
}
