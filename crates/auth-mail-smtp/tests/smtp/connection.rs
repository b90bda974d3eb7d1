//! One kept connection: reused, replaced when idle, re-opened when the server restarts.

use std::sync::Arc;
use std::time::Duration;

use auth_domain::ports::MailTransport;
use auth_mail_smtp::{Security, SmtpMailer};

use crate::support::*;

#[tokio::test]
async fn two_mails_in_a_row_share_one_connection() {
    let server = TestServer::start();
    let mailer = SmtpMailer::new(server.config()).unwrap();

    mailer.send(&verify_mail()).await.unwrap();
    mailer.send(&verify_mail()).await.unwrap();

    assert_eq!(server.mails().len(), 2);
    assert_eq!(server.helos(), 1, "one EHLO: one connection");
}

#[tokio::test]
async fn mails_sent_from_several_tasks_all_arrive_over_one_connection() {
    let server = TestServer::start();
    let mailer = Arc::new(SmtpMailer::new(server.config()).unwrap());

    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let mailer = mailer.clone();
            tokio::spawn(async move { mailer.send(&verify_mail()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    assert_eq!(server.mails().len(), 5);
    assert_eq!(server.helos(), 1);
}

#[tokio::test]
async fn a_mail_after_a_server_restart_is_delivered_on_a_new_connection() {
    let before = TestServer::start();
    let after = TestServer::start();
    let relay = Relay::start(before.addr).await;
    let mailer = SmtpMailer::new(config_for(relay.addr, Security::None)).unwrap();
    mailer.send(&verify_mail()).await.unwrap();

    relay.restart(after.addr);
    // Let the relay close the old connection before the next mail.
    tokio::time::sleep(Duration::from_millis(50)).await;
    mailer.send(&verify_mail()).await.unwrap();

    assert_eq!(before.mails().len(), 1);
    assert_eq!(after.mails().len(), 1, "delivered after the restart");
    assert_eq!(relay.connections(), 2, "one reconnection");
}

#[tokio::test]
async fn an_idle_connection_is_replaced() {
    let server = TestServer::start();
    let mut config = server.config();
    config.max_idle = Duration::ZERO;
    let mailer = SmtpMailer::new(config).unwrap();

    mailer.send(&verify_mail()).await.unwrap();
    mailer.send(&verify_mail()).await.unwrap();

    assert_eq!(server.mails().len(), 2);
    assert_eq!(server.helos(), 2, "a new connection for the second mail");
}
