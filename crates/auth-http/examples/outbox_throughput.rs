//! Mails per second through the outbox, against a real SMTP server in this process, with
//! the same mails sent straight over SMTP (no outbox) in the same run as the baseline.
//!
//! ```text
//! cargo run --release -p auth-http --example outbox_throughput -- [mails]
//! DATABASE_URL=postgres://postgres@127.0.0.1/outbox_bench cargo run --release -p auth-http --example outbox_throughput
//! ```
//!
//! Without `DATABASE_URL` the outbox is a fresh SQLite file in a temporary directory. The
//! mails are queued first (by registrations, with the worker stopped), then one worker
//! drains them: the figure is claim + open + render + SMTP + delete per mail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use auth_domain::ClientContext;
use auth_domain::model::{Mail, MailKind};
use auth_domain::ports::MailTransport;
use auth_domain::service::{Registration, SecretPassword};
use auth_domain::types::Email;
use auth_http::config::Config;
use auth_http::startup;
use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server, SslConfig};
use secrecy::SecretString;

#[derive(Clone)]
struct Counter(Arc<AtomicUsize>);

impl Handler for Counter {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        OK
    }
    fn data_end(&mut self) -> Response {
        self.0.fetch_add(1, Ordering::SeqCst);
        OK
    }
}

fn start_smtp() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let handler = Counter(Arc::clone(&count));
    std::thread::spawn(move || {
        let mut server = Server::new(handler);
        server.with_name("bench.local").with_tcp_listener(listener);
        server.with_ssl(SslConfig::None).unwrap();
        server.serve().unwrap();
    });
    (port, count)
}

#[actix_web::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let (port, received) = start_smtp();
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = [
        ("AUTH_DATA_DIR", dir.path().to_str().unwrap()),
        ("BCRYPT_COST", "4"),
        ("MAIL_SERVER", "127.0.0.1"),
        ("MAIL_PORT", &port.to_string()),
        ("MAIL_USE_TLS", "false"),
        ("MAIL_DEFAULT_SENDER", "Bench <bench@example.com>"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        vars.insert("DATABASE_URL".to_owned(), url);
    }
    let config = Config::from_vars(vars).unwrap();
    let (state, facts) = startup::build_state(config, None).await.unwrap();
    println!("storage: {}", facts.storage);
    println!("mail:    {}", facts.mail);

    // Baseline: the same kind of mail straight to the SMTP transport, one connection.
    let mailer = &state.service.ports().mail;
    let start = Instant::now();
    for i in 0..n {
        let mail = Mail {
            to: Email::parse(&format!("direct{i}@example.com")).unwrap(),
            name: Some("Bench".to_owned()),
            kind: MailKind::VerifyEmail,
            link: Some(SecretString::from(format!(
                "http://localhost:3000/verify-email?token={i:043}"
            ))),
        };
        mailer.send(&mail).await.unwrap();
    }
    let direct = start.elapsed();
    assert_eq!(received.load(Ordering::SeqCst), n);

    // Queue n verification mails (registrations; no worker runs).
    let start = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..n {
        state
            .service
            .register(
                Registration {
                    email: format!("user{i}.{run}@example.com"),
                    username: format!("u{i}_{}", &run[..8]),
                    password: SecretPassword("Plum-Tractor-Nebula-7318".to_owned()),
                    name: "Bench".to_owned(),
                    surname: "User".to_owned(),
                    phone_number: None,
                },
                &ClientContext::default(),
            )
            .await
            .unwrap();
    }
    let queueing = start.elapsed();
    let queued = state.service.outbox_stats().await.unwrap().queued;

    // Drain with one worker's loop.
    let start = Instant::now();
    let mut sent = 0;
    loop {
        let report = state.service.deliver_mail(10).await.unwrap();
        if report.is_empty() {
            break;
        }
        sent += report.sent();
    }
    let outbox = start.elapsed();
    assert_eq!(received.load(Ordering::SeqCst), 2 * n);

    let rate = |d: std::time::Duration, k: usize| k as f64 / d.as_secs_f64();
    println!();
    println!("| path | mails | seconds | mails/s |");
    println!("|---|---:|---:|---:|");
    println!(
        "| SMTP only (baseline) | {n} | {:.2} | {:.0} |",
        direct.as_secs_f64(),
        rate(direct, n)
    );
    println!(
        "| through the outbox (claim, open, render, SMTP, delete) | {sent} | {:.2} | {:.0} |",
        outbox.as_secs_f64(),
        rate(outbox, sent)
    );
    println!(
        "| registrations queueing them (bcrypt cost 4) | {queued} | {:.2} | {:.0} |",
        queueing.as_secs_f64(),
        rate(queueing, n)
    );
    println!();
    println!(
        "outbox / SMTP-only: {:.2}",
        rate(outbox, sent) / rate(direct, n)
    );
}
