//! `ferrolog users`: SCRAM users (like `kafka-configs.sh --entity-type users` with
//! `SCRAM-SHA-256=[…]`), through AlterUserScramCredentials and DescribeUserScramCredentials.
//! The password is salted here, as Kafka's tools salt it: the broker never sees it.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::sasl::{scram, Mechanism};
use ferrolog_client::{check_error, str};

#[derive(Args)]
pub struct UsersArgs {
    /// The broker to talk to, host:port.
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[command(subcommand)]
    action: UsersAction,
}

#[derive(Subcommand)]
enum UsersAction {
    /// Every user with a SCRAM credential, its mechanisms and iterations.
    List,
    /// Create or replace a user's credential.
    Add {
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// 4096 to 16384.
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
    },
    /// Delete a user's credential for a mechanism.
    Remove {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
}

fn scram_type(name: &str) -> Result<(Mechanism, i8)> {
    let m = Mechanism::parse(name).with_context(|| format!("unknown mechanism {name}"))?;
    let t = m
        .scram_type()
        .with_context(|| format!("{name} is not a SCRAM mechanism"))?;
    Ok((m, t))
}

pub async fn run(args: UsersArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    match args.action {
        UsersAction::List => {
            let response = c
                .send(&DescribeUserScramCredentialsRequest::default().with_users(None))
                .await?;
            check_error(response.error_code, response.error_message.as_deref())?;
            for r in &response.results {
                for info in &r.credential_infos {
                    let name =
                        Mechanism::from_scram_type(info.mechanism).map_or("UNKNOWN", |m| m.name());
                    println!("{}\t{name}\titerations={}", r.user, info.iterations);
                }
            }
        }
        UsersAction::Add {
            user,
            password,
            mechanism,
            iterations,
        } => {
            let (m, t) = scram_type(&mechanism)?;
            if !(4096..=16384).contains(&iterations) {
                bail!("--iterations must be within 4096-16384");
            }
            let salt = scram::random(32);
            let salted = scram::salted_password(m, &password, &salt, iterations as u32);
            let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                    .with_name(str(&user))
                    .with_mechanism(t)
                    .with_iterations(iterations)
                    .with_salt(salt.into())
                    .with_salted_password(salted.into()),
            ]);
            check(c.send(&request).await?)?;
            println!("{user}: {} credential set", m.name());
        }
        UsersAction::Remove { user, mechanism } => {
            let (m, t) = scram_type(&mechanism)?;
            let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
                alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                    .with_name(str(&user))
                    .with_mechanism(t),
            ]);
            check(c.send(&request).await?)?;
            println!("{user}: {} credential removed", m.name());
        }
    }
    Ok(())
}

fn check(response: AlterUserScramCredentialsResponse) -> Result<()> {
    for r in &response.results {
        check_error(r.error_code, r.error_message.as_deref())
            .with_context(|| r.user.to_string())?;
    }
    Ok(())
}
