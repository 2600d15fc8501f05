//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): SCRAM credentials
//! live in the metadata log as salt, StoredKey and ServerKey, derived here from the salted
//! password the client sends (Kafka's clients salt the password themselves).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrolog_client::sasl::{scram, Mechanism};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;

use super::str;
use crate::metadata::{MetadataRecord, ScramCredential};
use crate::security::sasl::{MAX_ITERATIONS, MIN_ITERATIONS};
use crate::Broker;

pub fn describe(
    broker: &Arc<Broker>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let image = broker.controller.image();
    let info = |user: &str| -> Vec<CredentialInfo> {
        image
            .scram
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|(name, c)| {
                Some(
                    CredentialInfo::default()
                        .with_mechanism(Mechanism::parse(name)?.scram_type()?)
                        .with_iterations(c.iterations),
                )
            })
            .collect()
    };
    let mut response = DescribeUserScramCredentialsResponse::default();
    match request.users {
        // null or empty: every user with a credential
        None => response.results = all(&image, &info),
        Some(users) if users.is_empty() => response.results = all(&image, &info),
        Some(users) => {
            let mut seen = BTreeMap::new();
            for u in &users {
                *seen.entry(u.name.to_string()).or_insert(0) += 1;
            }
            for (user, count) in seen {
                let mut r = DescribeUserScramCredentialsResult::default().with_user(str(&user));
                if count > 1 {
                    r.error_code = ResponseError::DuplicateResource.code();
                    r.error_message = Some(str(&format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                    )));
                } else {
                    let infos = info(&user);
                    if infos.is_empty() {
                        r.error_code = ResponseError::ResourceNotFound.code();
                        r.error_message = Some(str(&format!(
                            "Attempt to describe a user credential that does not exist: {user}"
                        )));
                    }
                    r.credential_infos = infos;
                }
                response.results.push(r);
            }
        }
    }
    response
}

fn all(
    image: &crate::metadata::MetadataImage,
    info: &dyn Fn(&str) -> Vec<CredentialInfo>,
) -> Vec<DescribeUserScramCredentialsResult> {
    image
        .scram
        .keys()
        .map(|user| {
            DescribeUserScramCredentialsResult::default()
                .with_user(str(user))
                .with_credential_infos(info(user))
        })
        .collect()
}

pub fn alter(
    broker: &Arc<Broker>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let image = broker.controller.image();
    // a (user, mechanism) changed twice in one request gets DUPLICATE_RESOURCE for all of the
    // user's changes, as in Kafka
    let mut times: BTreeMap<(String, i8), usize> = BTreeMap::new();
    for key in request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .chain(
            request
                .upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism)),
        )
    {
        *times.entry(key).or_default() += 1;
    }
    let duplicated: std::collections::BTreeSet<&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((user, _), _)| user.as_str())
        .collect();
    // one result per user: its first error, or all its records
    let mut outcome: BTreeMap<String, Result<Vec<MetadataRecord>, (ResponseError, String)>> =
        BTreeMap::new();
    let mut add = |user: String, result: Result<Vec<MetadataRecord>, (ResponseError, String)>| {
        let entry = outcome.entry(user).or_insert_with(|| Ok(Vec::new()));
        match (entry.as_mut(), result) {
            (Ok(records), Ok(more)) => records.extend(more),
            (Ok(_), Err(e)) => *entry = Err(e),
            (Err(_), _) => {}
        }
    };
    let mechanism = |t: i8| {
        Mechanism::from_scram_type(t).ok_or_else(|| {
            (
                ResponseError::UnsupportedSaslMechanism,
                format!("Unknown SCRAM mechanism {t}"),
            )
        })
    };
    let check = |user: &str| -> Result<(), (ResponseError, String)> {
        if user.is_empty() {
            return Err((
                ResponseError::UnacceptableCredential,
                "Username must not be empty".into(),
            ));
        }
        if duplicated.contains(user) {
            return Err((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".into(),
            ));
        }
        Ok(())
    };
    for d in &request.deletions {
        let user = d.name.to_string();
        let result = check(&user).and_then(|_| {
            let m = mechanism(d.mechanism)?;
            if !image
                .scram
                .get(&user)
                .is_some_and(|c| c.contains_key(m.name()))
            {
                return Err((
                    ResponseError::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist".into(),
                ));
            }
            Ok(vec![MetadataRecord::RemoveScramCredential {
                user: user.clone(),
                mechanism: m.name().to_string(),
            }])
        });
        add(user, result);
    }
    for u in &request.upsertions {
        let user = u.name.to_string();
        let result = check(&user).and_then(|_| {
            let m = mechanism(u.mechanism)?;
            if u.iterations < MIN_ITERATIONS {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "Too few iterations".into(),
                ));
            }
            if u.iterations > MAX_ITERATIONS {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "Too many iterations".into(),
                ));
            }
            if u.salt.is_empty() || u.salted_password.is_empty() {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "A SCRAM credential needs a salt and a salted password".into(),
                ));
            }
            let (stored_key, server_key) = scram::keys(m, &u.salted_password);
            Ok(vec![MetadataRecord::ScramCredential {
                user: user.clone(),
                mechanism: m.name().to_string(),
                credential: ScramCredential {
                    salt: u.salt.to_vec(),
                    stored_key,
                    server_key,
                    iterations: u.iterations,
                },
            }])
        });
        add(user, result);
    }
    let records: Vec<MetadataRecord> = outcome
        .values()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    let committed = if records.is_empty() {
        Ok(())
    } else {
        broker.controller.commit(&records).map(|_| ())
    };
    let mut response = AlterUserScramCredentialsResponse::default();
    for (user, result) in outcome {
        let mut r = AlterUserScramCredentialsResult::default().with_user(str(&user));
        let error = match (&result, &committed) {
            (Err((e, message)), _) => Some((*e, message.clone())),
            (Ok(_), Err(e)) => Some((ResponseError::NotController, format!("{e:#}"))),
            (Ok(_), Ok(())) => None,
        };
        if let Some((e, message)) = error {
            r.error_code = e.code();
            r.error_message = Some(str(&message));
        }
        response.results.push(r);
    }
    response
}
