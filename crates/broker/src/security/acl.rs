//! Access control lists and the authorizer, with the semantics of Kafka's StandardAuthorizer.
//!
//! An ACL binds a resource pattern (a type, a name, literal or prefixed; the literal name `*`
//! matches every name) to an entry (a principal, `User:*` for everyone; a host, `*` for every
//! host; an operation; ALLOW or DENY). A request's action — principal, client host, operation,
//! resource — is allowed when:
//! 1. the principal is one of `super.users`; else
//! 2. no matching DENY entry exists, and a matching ALLOW entry does (an ALLOW of READ, WRITE,
//!    DELETE or ALTER also allows DESCRIBE, and ALTER_CONFIGS allows DESCRIBE_CONFIGS; a DENY
//!    denies only its own operation, or every one for ALL); else
//! 3. no ACL at all names the resource (whoever it is for) and `allow.everyone.if.no.acl.found`
//!    is true.
//!
//! The ACLs live in the metadata log (records [`crate::metadata::MetadataRecord::Acl`]), so they
//! are the same on every broker and survive restarts. [`Authorizer`] keeps an index of them,
//! rebuilt when the image's ACLs change ([`Acls`] counts the changes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Properties;

/// The class names of Kafka's authorizers that ferrolog stands in for.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The wildcard resource name and host.
pub const WILDCARD: &str = "*";

/// The principal of an ACL for everyone.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }

            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`TRANSACTIONAL_ID`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Parses Kafka's name, case-insensitively, with `-` or `_` between words.
            pub fn parse(s: &str) -> Option<$name> {
                let s = s.trim().replace('-', "_");
                Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(&s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

codes!(
    /// Kafka's ResourceType (`ANY` only in filters).
    ResourceType {
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
);

codes!(
    /// Kafka's PatternType (`ANY` and `MATCH` only in filters).
    PatternType {
        Any = 1 => "ANY",
        Match = 2 => "MATCH",
        Literal = 3 => "LITERAL",
        Prefixed = 4 => "PREFIXED",
    }
);

codes!(
    /// Kafka's AclOperation (`ANY` only in filters).
    Operation {
        Any = 1 => "ANY",
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
        TwoPhaseCommit = 15 => "TWO_PHASE_COMMIT",
    }
);

codes!(
    /// Kafka's AclPermissionType (`ANY` only in filters).
    Permission {
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
);

impl ResourceType {
    /// The name the authorizer log gives a resource of this type (`TransactionalId`).
    pub fn log_name(self) -> &'static str {
        match self {
            ResourceType::Any => "Any",
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }

    /// The operations an ACL on this type can name, as Kafka lists them (also what the
    /// `*_authorized_operations` fields are made of).
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Delete, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// One ACL: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for every principal.
    pub principal: String,
    /// A client address, or `*` for every host.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Checks a binding to be created as Kafka's controller does: `Err` is the
    /// INVALID_REQUEST message. (Like Kafka, any host string is taken, and an operation the
    /// resource type has no use for.)
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if self.resource_name.is_empty() {
            return Err("Invalid empty resource name".into());
        }
        if matches!(self.resource_type, ResourceType::Any) {
            return Err("Invalid resourceType ANY".into());
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!("Invalid patternType {}", self.pattern_type));
        }
        if matches!(self.operation, Operation::Any) {
            return Err("Invalid operation ANY".into());
        }
        if matches!(self.permission, Permission::Any) {
            return Err("Invalid permissionType ANY".into());
        }
        if parse_principal(&self.principal).is_none() {
            return Err(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            ));
        }
        Ok(())
    }

    /// Kafka's text for a binding, as its authorizer log shows it.
    pub fn describe(&self) -> String {
        format!(
            "StandardAcl(resourceType={}, resourceName={}, patternType={}, principal={}, host={}, operation={}, permissionType={})",
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission,
        )
    }
}

/// `Type:name` split at the first colon.
pub fn parse_principal(p: &str) -> Option<(&str, &str)> {
    p.split_once(':').filter(|(t, _)| !t.is_empty())
}

/// What DescribeAcls and DeleteAcls select. `None` strings match anything.
#[derive(Debug, Clone)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Builds a filter from wire codes; `Err` names the code Kafka would not understand.
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<String>,
        pattern_type: i8,
        principal: Option<String>,
        host: Option<String>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, String> {
        Ok(AclFilter {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| format!("Unknown resourceType {resource_type}"))?,
            resource_name,
            pattern_type: PatternType::from_code(pattern_type)
                .ok_or_else(|| format!("Unknown patternType {pattern_type}"))?,
            principal,
            host,
            operation: Operation::from_code(operation)
                .ok_or_else(|| format!("Unknown operation {operation}"))?,
            permission: Permission::from_code(permission)
                .ok_or_else(|| format!("Unknown permissionType {permission}"))?,
        })
    }

    /// Kafka's ResourcePatternFilter and AccessControlEntryFilter matching: a MATCH filter
    /// with a name selects every ACL that would apply to a resource of that name (its
    /// literal, the wildcard and every prefix of it).
    pub fn matches(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let name_matches = match &self.resource_name {
            None => true,
            Some(name) if self.pattern_type != PatternType::Match => *name == acl.resource_name,
            Some(name) => match acl.pattern_type {
                PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&acl.resource_name),
                _ => false,
            },
        };
        name_matches
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == Operation::Any || self.operation == acl.operation)
            && (self.permission == Permission::Any || self.permission == acl.permission)
    }
}

/// The ACLs of the metadata image, by id.
pub type AclMap = BTreeMap<Uuid, AclBinding>;

/// The ACLs of the metadata image, and a count of their changes (the authorizer rebuilds its
/// index when it moves).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Acls {
    by_id: AclMap,
    version: u64,
}

impl Acls {
    pub fn insert(&mut self, id: Uuid, acl: AclBinding) {
        self.by_id.insert(id, acl);
        self.version += 1;
    }

    pub fn remove(&mut self, id: &Uuid) {
        self.by_id.remove(id);
        self.version += 1;
    }
}

impl std::ops::Deref for Acls {
    type Target = AclMap;

    fn deref(&self) -> &AclMap {
        &self.by_id
    }
}

/// Who asks: a principal from a client host.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a str,
    /// The client's address, without Kafka's leading `/`.
    pub host: &'a str,
}

/// The answer to one action, and why: a rule for the authorizer log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed(Why),
    Denied(Why),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    SuperUser,
    Acl(AclBinding),
    /// No ACL names the resource and `allow.everyone.if.no.acl.found` is true.
    NoAclFound,
    /// No ACL allows it (some name the resource, or none does and everyone is not allowed).
    NoMatchingAllow,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::SuperUser => f.write_str("SuperUser"),
            Why::Acl(acl) => write!(f, "MatchingAcl(acl={})", acl.describe()),
            Why::NoAclFound => f.write_str("DefaultAllow"),
            Why::NoMatchingAllow => f.write_str("DefaultDeny"),
        }
    }
}

/// The ACLs of one resource type, indexed for lookups by resource name.
#[derive(Default)]
struct TypeIndex {
    literal: HashMap<String, Vec<AclBinding>>,
    prefixed: HashMap<String, Vec<AclBinding>>,
    /// The lengths of the prefixes in `prefixed`: a name is looked up at these lengths only.
    prefix_lengths: BTreeSet<usize>,
}

impl TypeIndex {
    /// Every ACL that names `name`: its literal ACLs, the wildcard's, and every prefix's.
    fn naming<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a AclBinding> + 'a {
        let literal = self.literal.get(name).into_iter().flatten();
        let wildcard = (name != WILDCARD)
            .then(|| self.literal.get(WILDCARD))
            .flatten()
            .into_iter()
            .flatten();
        let prefixed = self
            .prefix_lengths
            .iter()
            .take_while(move |len| **len <= name.len())
            .filter(move |len| name.is_char_boundary(**len))
            .filter_map(move |len| self.prefixed.get(&name[..*len]))
            .flatten();
        literal.chain(wildcard).chain(prefixed)
    }
}

/// What one ACL entry says about an action: `Some(permission)` if it applies.
fn applies(acl: &AclBinding, who: Requester<'_>, operation: Operation) -> Option<Permission> {
    // Kafka's one wildcard principal, whatever the principal's type
    if acl.principal != who.principal && acl.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if acl.host != WILDCARD && acl.host != who.host {
        return None;
    }
    if acl.operation != Operation::All && acl.operation != operation {
        // only an ALLOW implies other operations
        let implied = acl.permission == Permission::Allow
            && match operation {
                Operation::Describe => matches!(
                    acl.operation,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ),
                Operation::DescribeConfigs => acl.operation == Operation::AlterConfigs,
                _ => false,
            };
        if !implied {
            return None;
        }
    }
    Some(acl.permission)
}

#[derive(Default)]
struct AclIndex {
    types: HashMap<ResourceType, TypeIndex>,
}

impl AclIndex {
    fn build(acls: &AclMap) -> AclIndex {
        let mut index = AclIndex::default();
        for acl in acls.values() {
            let t = index.types.entry(acl.resource_type).or_default();
            match acl.pattern_type {
                PatternType::Prefixed => {
                    t.prefix_lengths.insert(acl.resource_name.len());
                    t.prefixed
                        .entry(acl.resource_name.clone())
                        .or_default()
                        .push(acl.clone());
                }
                _ => t
                    .literal
                    .entry(acl.resource_name.clone())
                    .or_default()
                    .push(acl.clone()),
            }
        }
        index
    }
}

/// The broker's authorizer: its settings and an index of the image's ACLs.
pub struct Authorizer {
    super_users: BTreeSet<String>,
    allow_everyone_if_no_acl_found: bool,
    /// The index and the ACL version of the image it was built from.
    index: Mutex<(u64, Arc<AclIndex>)>,
    /// Denials logged at a bounded rate.
    log: Mutex<DenialLog>,
}

impl Authorizer {
    /// The authorizer `authorizer.class.name` asks for: `None` when it is empty, an error
    /// naming it when it is not Kafka's StandardAuthorizer.
    pub fn from_properties(properties: &Properties) -> anyhow::Result<Option<Authorizer>> {
        let class = properties
            .get("authorizer.class.name")
            .map(|s| s.trim())
            .unwrap_or("");
        if class.is_empty() {
            return Ok(None);
        }
        if class != STANDARD_AUTHORIZER {
            anyhow::bail!(
                "Invalid value {class} for configuration authorizer.class.name: ferrolog does not implement that authorizer; it has Kafka's {STANDARD_AUTHORIZER} (ACLs in the metadata log)"
            );
        }
        let super_users = properties
            .get("super.users")
            .map(|s| {
                s.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default();
        for user in &super_users {
            if parse_principal(user).is_none() {
                anyhow::bail!(
                    "Invalid value {user} in configuration super.users: a principal is Type:name, e.g. User:admin"
                );
            }
        }
        let allow_everyone = match properties
            .get("allow.everyone.if.no.acl.found")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => anyhow::bail!(
                "Invalid value {other} for configuration allow.everyone.if.no.acl.found: Expected value to be either true or false"
            ),
        };
        Ok(Some(Authorizer::new(super_users, allow_everyone)))
    }

    pub fn new(super_users: BTreeSet<String>, allow_everyone_if_no_acl_found: bool) -> Self {
        Authorizer {
            super_users,
            allow_everyone_if_no_acl_found,
            index: Mutex::new((u64::MAX, Arc::new(AclIndex::default()))),
            log: Mutex::new(DenialLog::default()),
        }
    }

    fn index(&self, acls: &Acls) -> Arc<AclIndex> {
        let mut cached = crate::locks::lock(&self.index);
        if cached.0 != acls.version {
            *cached = (acls.version, Arc::new(AclIndex::build(acls)));
        }
        cached.1.clone()
    }

    /// Decides one action on a resource.
    pub fn decide(
        &self,
        acls: &Acls,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        if self.super_users.contains(who.principal) {
            return Decision::Allowed(Why::SuperUser);
        }
        let index = self.index(acls);
        let mut named = false;
        let mut allow = None;
        if let Some(t) = index.types.get(&resource_type) {
            for acl in t.naming(name) {
                named = true;
                match applies(acl, who, operation) {
                    Some(Permission::Deny) => return Decision::Denied(Why::Acl(acl.clone())),
                    Some(Permission::Allow) if allow.is_none() => allow = Some(acl),
                    _ => {}
                }
            }
        }
        match allow {
            Some(acl) => Decision::Allowed(Why::Acl(acl.clone())),
            None if !named && self.allow_everyone_if_no_acl_found => {
                Decision::Allowed(Why::NoAclFound)
            }
            None => Decision::Denied(Why::NoMatchingAllow),
        }
    }

    /// Whether `who` may do `operation` on the resource; a denial goes to the authorizer log
    /// (rate-bounded) when `log_denial`, as Kafka logs the actions a request needs (not those
    /// it only filters by).
    #[allow(clippy::too_many_arguments)]
    pub fn authorize(
        &self,
        acls: &Acls,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
        api: &str,
        log_denial: bool,
    ) -> bool {
        let decision = self.decide(acls, who, operation, resource_type, name);
        match &decision {
            Decision::Allowed(why) => {
                tracing::debug!(
                    target: "ferrolog::authorizer",
                    "Principal = {} is Allowed operation = {operation} from host = {} on resource = {}:LITERAL:{name} for request = {api} based on rule {why}",
                    who.principal, who.host, resource_type.log_name()
                );
            }
            Decision::Denied(why) if log_denial => {
                let line = format!(
                    "Principal = {} is Denied operation = {operation} from host = {} on resource = {}:LITERAL:{name} for request = {api} based on rule {why}",
                    who.principal, who.host, resource_type.log_name()
                );
                crate::locks::lock(&self.log).denied(line);
            }
            Decision::Denied(_) => {}
        }
        decision.allowed()
    }

    /// Whether `who` may do `operation` on some resource of the type (Kafka's
    /// authorizeByResourceType: what an idempotent producer needs without IDEMPOTENT_WRITE on
    /// the cluster is WRITE on any topic). Allowed when a resource of a name no ACL names
    /// would be, or when an ALLOW applies whose resources a DENY does not cover.
    pub fn authorize_any(
        &self,
        acls: &Acls,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        // a made-up name: super users, the wildcard and allow.everyone.if.no.acl.found
        if self
            .decide(acls, who, operation, resource_type, "hardcode")
            .allowed()
        {
            return true;
        }
        let index = self.index(acls);
        let Some(t) = index.types.get(&resource_type) else {
            return false;
        };
        fn applying<'a>(
            acls: &'a HashMap<String, Vec<AclBinding>>,
            permission: Permission,
            who: Requester<'_>,
            operation: Operation,
        ) -> Vec<&'a str> {
            acls.iter()
                .filter(|(_, v)| {
                    v.iter().any(|a| {
                        a.permission == permission
                            && applies(a, who, operation) == Some(permission)
                            // an implied DESCRIBE does not count here, as in Kafka
                            && (a.operation == operation || a.operation == Operation::All)
                    })
                })
                .map(|(name, _)| name.as_str())
                .collect()
        }
        let denied_literal = applying(&t.literal, Permission::Deny, who, operation);
        if denied_literal.contains(&WILDCARD) {
            return false;
        }
        let allowed_literal = applying(&t.literal, Permission::Allow, who, operation);
        if allowed_literal.contains(&WILDCARD) {
            return true;
        }
        let denied_prefixes = applying(&t.prefixed, Permission::Deny, who, operation);
        let covered = |name: &str| denied_prefixes.iter().any(|p| name.starts_with(p));
        allowed_literal
            .into_iter()
            .any(|name| !denied_literal.contains(&name) && !covered(name))
            || applying(&t.prefixed, Permission::Allow, who, operation)
                .into_iter()
                .any(|name| !covered(name))
    }

    /// The `*_authorized_operations` bits (bit n = operation code n) of a resource.
    pub fn authorized_operations(
        &self,
        acls: &Acls,
        who: Requester<'_>,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        resource_type
            .operations()
            .iter()
            .filter(|op| self.decide(acls, who, **op, resource_type, name).allowed())
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

/// The authorizer log's denials: each line at INFO, at most [`DenialLog::PER_WINDOW`] per
/// window, then how many were left out.
#[derive(Default)]
struct DenialLog {
    window_start: Option<std::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl DenialLog {
    const PER_WINDOW: u32 = 100;
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

    fn denied(&mut self, line: String) {
        let now = std::time::Instant::now();
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= Self::WINDOW)
        {
            if self.suppressed > 0 {
                tracing::info!(
                    target: "ferrolog::authorizer",
                    "{} more denials not logged in the last {} s",
                    self.suppressed,
                    Self::WINDOW.as_secs()
                );
            }
            *self = DenialLog {
                window_start: Some(now),
                ..DenialLog::default()
            };
        }
        if self.logged < Self::PER_WINDOW {
            self.logged += 1;
            tracing::info!(target: "ferrolog::authorizer", "{line}");
        } else {
            self.suppressed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission: perm,
        }
    }

    fn image(list: Vec<AclBinding>) -> Acls {
        let mut acls = Acls::default();
        for (i, a) in list.into_iter().enumerate() {
            acls.insert(Uuid::from_u128(i as u128 + 1), a);
        }
        // a new version each time: an authorizer's index follows the version
        static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        acls.version = VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        acls
    }

    const ALICE: Requester<'static> = Requester {
        principal: "User:alice",
        host: "127.0.0.1",
    };
    const BOB: Requester<'static> = Requester {
        principal: "User:bob",
        host: "127.0.0.1",
    };

    #[test]
    fn standard_authorizer_rules() {
        use Operation::*;
        use PatternType::*;
        use Permission::*;
        use ResourceType::*;
        let img = image(vec![
            acl(Topic, "orders", Literal, "User:alice", Read, Allow),
            acl(Topic, "pay-", Prefixed, "User:*", Write, Allow),
            acl(Topic, "pay-secret", Literal, "User:bob", All, Deny),
            acl(Group, "*", Literal, "User:alice", Read, Allow),
            acl(Topic, "configs", Literal, "User:alice", AlterConfigs, Allow),
            acl(Topic, "denyread", Literal, "User:alice", Read, Deny),
            acl(Topic, "denyread", Literal, "User:alice", Describe, Allow),
        ]);
        let az = Authorizer::new(["User:admin".to_string()].into(), false);
        let ok = |who, op, rt, name| az.decide(&img, who, op, rt, name).allowed();
        assert!(ok(ALICE, Read, Topic, "orders"));
        // READ implies DESCRIBE, not WRITE
        assert!(ok(ALICE, Describe, Topic, "orders"));
        assert!(!ok(ALICE, Write, Topic, "orders"));
        assert!(!ok(BOB, Read, Topic, "orders"));
        // a prefix for everyone, and a DENY of ALL that beats it
        assert!(ok(BOB, Write, Topic, "pay-in"));
        assert!(ok(ALICE, Write, Topic, "pay-secret"));
        assert!(!ok(BOB, Write, Topic, "pay-secret"));
        // the wildcard resource
        assert!(ok(ALICE, Read, Group, "any-group"));
        assert!(!ok(BOB, Read, Group, "any-group"));
        // ALTER_CONFIGS implies DESCRIBE_CONFIGS
        assert!(ok(ALICE, DescribeConfigs, Topic, "configs"));
        // a DENY of READ does not deny DESCRIBE
        assert!(ok(ALICE, Describe, Topic, "denyread"));
        assert!(!ok(ALICE, Read, Topic, "denyread"));
        // super users pass DENYs
        let admin = Requester {
            principal: "User:admin",
            host: "10.0.0.1",
        };
        assert!(ok(admin, Write, Topic, "pay-secret"));
        // no ACL names the resource: allow.everyone.if.no.acl.found decides
        assert!(!ok(ALICE, Read, Topic, "unnamed"));
        let open = Authorizer::new(BTreeSet::new(), true);
        assert!(open.decide(&img, BOB, Read, Topic, "unnamed").allowed());
        // ... but once any ACL names it, only ACLs do
        assert!(!open.decide(&img, BOB, Read, Topic, "orders").allowed());
    }

    #[test]
    fn hosts_must_match_unless_wildcard() {
        let mut a = acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:alice",
            Operation::Read,
            Permission::Allow,
        );
        a.host = "10.1.1.1".into();
        let img = image(vec![a]);
        let az = Authorizer::new(BTreeSet::new(), false);
        let from = |host| Requester {
            principal: "User:alice",
            host,
        };
        assert!(az
            .decide(
                &img,
                from("10.1.1.1"),
                Operation::Read,
                ResourceType::Topic,
                "t"
            )
            .allowed());
        assert!(!az
            .decide(
                &img,
                from("127.0.0.1"),
                Operation::Read,
                ResourceType::Topic,
                "t"
            )
            .allowed());
    }

    #[test]
    fn authorize_by_resource_type() {
        use Operation::*;
        use PatternType::*;
        use Permission::*;
        use ResourceType::*;
        let az = Authorizer::new(BTreeSet::new(), false);
        let img = image(vec![acl(Topic, "a", Literal, "User:alice", Write, Allow)]);
        assert!(az.authorize_any(&img, ALICE, Write, Topic));
        assert!(!az.authorize_any(&img, BOB, Write, Topic));
        // read does not count for write, nor an implied describe
        let img = image(vec![acl(Topic, "a", Literal, "User:alice", Read, Allow)]);
        assert!(!az.authorize_any(&img, ALICE, Write, Topic));
        // a prefix denial covers the literal allow
        let img = image(vec![
            acl(Topic, "ab", Literal, "User:alice", Write, Allow),
            acl(Topic, "a", Prefixed, "User:alice", Write, Deny),
        ]);
        assert!(!az.authorize_any(&img, ALICE, Write, Topic));
        let img = image(vec![
            acl(Topic, "x", Prefixed, "User:*", Write, Allow),
            acl(Topic, "*", Literal, "User:alice", Write, Deny),
        ]);
        assert!(!az.authorize_any(&img, ALICE, Write, Topic));
        assert!(az.authorize_any(&img, BOB, Write, Topic));
    }

    #[test]
    fn filters_match_as_kafka_filters() {
        use PatternType::*;
        let lit = acl(
            ResourceType::Topic,
            "orders",
            Literal,
            "User:alice",
            Operation::Read,
            Permission::Allow,
        );
        let wild = AclBinding {
            resource_name: "*".into(),
            ..lit.clone()
        };
        let pre = AclBinding {
            resource_name: "ord".into(),
            pattern_type: Prefixed,
            ..lit.clone()
        };
        let filter = |name: Option<&str>, pt| AclFilter {
            resource_type: ResourceType::Any,
            resource_name: name.map(str::to_string),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        };
        let m = filter(Some("orders"), Match);
        assert!(m.matches(&lit) && m.matches(&wild) && m.matches(&pre));
        let any = filter(Some("orders"), Any);
        assert!(any.matches(&lit) && !any.matches(&wild) && !any.matches(&pre));
        let literal = filter(None, Literal);
        assert!(literal.matches(&lit) && literal.matches(&wild) && !literal.matches(&pre));
        let mut by_op = filter(None, Any);
        by_op.operation = Operation::Write;
        assert!(!by_op.matches(&lit));
    }

    #[test]
    fn validation_refuses_what_kafka_refuses() {
        let good = acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:alice",
            Operation::Read,
            Permission::Allow,
        );
        assert_eq!(good.validate(), Ok(()));
        for bad in [
            AclBinding {
                pattern_type: PatternType::Match,
                ..good.clone()
            },
            AclBinding {
                principal: "alice".into(),
                ..good.clone()
            },
            AclBinding {
                resource_name: String::new(),
                ..good.clone()
            },
            AclBinding {
                operation: Operation::Any,
                ..good.clone()
            },
            AclBinding {
                resource_type: ResourceType::Cluster,
                ..good.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
