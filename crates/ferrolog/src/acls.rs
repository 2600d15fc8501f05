//! `ferrolog acls` (like kafka-acls.sh): add, list and remove ACLs with CreateAcls,
//! DescribeAcls and DeleteAcls.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ferrolog_broker::security::acl::{
    AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME, WILDCARD,
};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{check_error, str};

#[derive(Args)]
pub struct AclsArgs {
    /// The broker to talk to, host:port.
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[command(subcommand)]
    action: AclsAction,
}

/// The resources and entries an action names.
#[derive(Args, Clone)]
struct Selection {
    /// A topic (`*` for every topic; repeatable).
    #[arg(long)]
    topic: Vec<String>,
    /// A consumer group (repeatable).
    #[arg(long)]
    group: Vec<String>,
    /// A transactional id (repeatable).
    #[arg(long)]
    transactional_id: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// literal or prefixed (add); also match or any (list, remove).
    #[arg(long, default_value = "literal")]
    resource_pattern_type: String,
    /// Principals allowed, as User:name (repeatable).
    #[arg(long)]
    allow_principal: Vec<String>,
    /// Principals denied (repeatable).
    #[arg(long)]
    deny_principal: Vec<String>,
    /// Hosts the allowed principals may connect from (default: every host).
    #[arg(long)]
    allow_host: Vec<String>,
    /// Hosts the denied principals are denied from (default: every host).
    #[arg(long)]
    deny_host: Vec<String>,
    /// Operations, as Kafka names them: Read, Write, Create, Delete, Alter, Describe,
    /// ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All (repeatable).
    #[arg(long)]
    operation: Vec<String>,
    /// The ACLs a producer needs: WRITE, DESCRIBE and CREATE on the topics (and WRITE and
    /// DESCRIBE on the transactional ids, IDEMPOTENT_WRITE on the cluster with --idempotent).
    #[arg(long, conflicts_with = "consumer")]
    producer: bool,
    /// With --producer: IDEMPOTENT_WRITE on the cluster.
    #[arg(long)]
    idempotent: bool,
    /// The ACLs a consumer needs: READ and DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    consumer: bool,
}

#[derive(Subcommand)]
enum AclsAction {
    /// Create ACLs.
    Add(Selection),
    /// List ACLs (all of them, or those of the resources given; --principal filters).
    List {
        #[command(flatten)]
        selection: Selection,
        /// Only the ACLs of this principal.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Delete the ACLs the options select (every ACL of the resources given, unless
    /// principals or operations narrow it).
    Remove(Selection),
}

fn parse<T>(what: &str, value: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    // kafka-acls.sh spells them Read, IdempotentWrite, ...; the wire names READ, IDEMPOTENT_WRITE
    let snake: String = value
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
            sep.into_iter().chain(std::iter::once(c))
        })
        .collect();
    parse(value)
        .or_else(|| parse(&snake))
        .with_context(|| format!("unknown {what} {value}"))
}

impl Selection {
    fn pattern_type(&self) -> Result<PatternType> {
        parse(
            "resource pattern type",
            &self.resource_pattern_type,
            PatternType::parse,
        )
    }

    /// (type, name) of every resource named.
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut r: Vec<(ResourceType, String)> = Vec::new();
        r.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
        r.extend(self.group.iter().map(|g| (ResourceType::Group, g.clone())));
        r.extend(
            self.transactional_id
                .iter()
                .map(|t| (ResourceType::TransactionalId, t.clone())),
        );
        if self.cluster {
            r.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
        }
        r
    }

    fn operations(&self) -> Result<Vec<Operation>> {
        self.operation
            .iter()
            .map(|o| parse("operation", o, Operation::parse))
            .collect()
    }

    /// The ACLs `add` creates: every (resource, operation) for every (principal, host).
    fn bindings(&self) -> Result<Vec<AclBinding>> {
        let pattern_type = self.pattern_type()?;
        let mut per_resource: Vec<(ResourceType, String, Vec<Operation>)> = Vec::new();
        if self.producer || self.consumer {
            use Operation::*;
            for t in &self.topic {
                let ops = if self.producer {
                    vec![Write, Describe, Create]
                } else {
                    vec![Read, Describe]
                };
                per_resource.push((ResourceType::Topic, t.clone(), ops));
            }
            if self.producer {
                for id in &self.transactional_id {
                    per_resource.push((
                        ResourceType::TransactionalId,
                        id.clone(),
                        vec![Write, Describe],
                    ));
                }
                if self.idempotent {
                    per_resource.push((
                        ResourceType::Cluster,
                        CLUSTER_NAME.into(),
                        vec![IdempotentWrite],
                    ));
                }
            } else {
                for g in &self.group {
                    per_resource.push((ResourceType::Group, g.clone(), vec![Read]));
                }
            }
        } else {
            let ops = self.operations()?;
            let ops = if ops.is_empty() {
                vec![Operation::All]
            } else {
                ops
            };
            for (rt, name) in self.resources() {
                per_resource.push((rt, name, ops.clone()));
            }
        }
        if per_resource.is_empty() {
            bail!("name a resource: --topic, --group, --transactional-id or --cluster");
        }
        let entries = self.entries();
        if entries.is_empty() {
            bail!("give --allow-principal or --deny-principal");
        }
        let mut out = Vec::new();
        for (rt, name, ops) in &per_resource {
            for (principal, host, permission) in &entries {
                for op in ops {
                    let acl = AclBinding {
                        resource_type: *rt,
                        resource_name: name.clone(),
                        pattern_type,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *op,
                        permission: *permission,
                    };
                    acl.validate().map_err(anyhow::Error::msg)?;
                    out.push(acl);
                }
            }
        }
        Ok(out)
    }

    /// (principal, host, permission) of every entry the options give.
    fn entries(&self) -> Vec<(String, String, Permission)> {
        let hosts = |h: &Vec<String>| {
            if h.is_empty() {
                vec![WILDCARD.to_string()]
            } else {
                h.clone()
            }
        };
        let mut out = Vec::new();
        for p in &self.allow_principal {
            for h in hosts(&self.allow_host) {
                out.push((p.clone(), h, Permission::Allow));
            }
        }
        for p in &self.deny_principal {
            for h in hosts(&self.deny_host) {
                out.push((p.clone(), h, Permission::Deny));
            }
        }
        out
    }

    /// The filters `list` and `remove` send: per resource (or every resource), per entry
    /// (or any entry), per operation (or any).
    fn filters(&self, principal: Option<&str>) -> Result<Vec<DescribeAclsRequest>> {
        let pattern_type = self.pattern_type()?;
        let resources: Vec<(ResourceType, Option<String>)> = match self.resources() {
            r if r.is_empty() => vec![(ResourceType::Any, None)],
            r => r.into_iter().map(|(t, n)| (t, Some(n))).collect(),
        };
        let entries: Vec<(Option<String>, Option<String>, Permission)> = match self.entries() {
            e if e.is_empty() => vec![(principal.map(str::to_string), None, Permission::Any)],
            e => e
                .into_iter()
                .map(|(p, h, perm)| {
                    let host = (h != WILDCARD
                        || !self.allow_host.is_empty()
                        || !self.deny_host.is_empty())
                    .then_some(h);
                    (Some(p), host, perm)
                })
                .collect(),
        };
        let ops = match self.operations()? {
            o if o.is_empty() => vec![Operation::Any],
            o => o,
        };
        let mut out = Vec::new();
        for (rt, name) in &resources {
            for (p, h, perm) in &entries {
                for op in &ops {
                    out.push(
                        DescribeAclsRequest::default()
                            .with_resource_type_filter(rt.code())
                            .with_resource_name_filter(name.as_deref().map(str))
                            .with_pattern_type_filter(if name.is_none() {
                                PatternType::Any.code()
                            } else {
                                pattern_type.code()
                            })
                            .with_principal_filter(p.as_deref().map(str))
                            .with_host_filter(h.as_deref().map(str))
                            .with_operation(op.code())
                            .with_permission_type(perm.code()),
                    );
                }
            }
        }
        Ok(out)
    }
}

pub async fn run(args: AclsArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    match args.action {
        AclsAction::Add(selection) => {
            let acls = selection.bindings()?;
            let request = CreateAclsRequest::default().with_creations(
                acls.iter()
                    .map(|a| {
                        create_acls_request::AclCreation::default()
                            .with_resource_type(a.resource_type.code())
                            .with_resource_name(str(&a.resource_name))
                            .with_resource_pattern_type(a.pattern_type.code())
                            .with_principal(str(&a.principal))
                            .with_host(str(&a.host))
                            .with_operation(a.operation.code())
                            .with_permission_type(a.permission.code())
                    })
                    .collect(),
            );
            let response = c.send(&request).await?;
            for (acl, result) in acls.iter().zip(&response.results) {
                check_error(result.error_code, result.error_message.as_deref())
                    .with_context(|| show(acl))?;
                println!("Added {}", show(acl));
            }
        }
        AclsAction::List {
            selection,
            principal,
        } => {
            let mut seen = std::collections::BTreeSet::new();
            for filter in selection.filters(principal.as_deref())? {
                let response = c.send(&filter).await?;
                check_error(response.error_code, response.error_message.as_deref())?;
                for r in &response.resources {
                    for a in &r.acls {
                        let acl = binding(
                            r.resource_type,
                            &r.resource_name,
                            r.pattern_type,
                            &a.principal,
                            &a.host,
                            a.operation,
                            a.permission_type,
                        )?;
                        if seen.insert(acl.clone()) {
                            println!("{}", show(&acl));
                        }
                    }
                }
            }
        }
        AclsAction::Remove(selection) => {
            let filters: Vec<delete_acls_request::DeleteAclsFilter> = selection
                .filters(None)?
                .into_iter()
                .map(|f| {
                    delete_acls_request::DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type_filter)
                        .with_resource_name_filter(f.resource_name_filter)
                        .with_pattern_type_filter(f.pattern_type_filter)
                        .with_principal_filter(f.principal_filter)
                        .with_host_filter(f.host_filter)
                        .with_operation(f.operation)
                        .with_permission_type(f.permission_type)
                })
                .collect();
            if selection.resources().is_empty() {
                bail!("name the resources whose ACLs to remove: --topic, --group, --transactional-id or --cluster");
            }
            let response = c
                .send(&DeleteAclsRequest::default().with_filters(filters))
                .await?;
            for r in &response.filter_results {
                check_error(r.error_code, r.error_message.as_deref())?;
                for m in &r.matching_acls {
                    let acl = binding(
                        m.resource_type,
                        &m.resource_name,
                        m.pattern_type,
                        &m.principal,
                        &m.host,
                        m.operation,
                        m.permission_type,
                    )?;
                    println!("Removed {}", show(&acl));
                }
            }
        }
    }
    Ok(())
}

fn binding(
    rt: i8,
    name: &str,
    pt: i8,
    principal: &str,
    host: &str,
    op: i8,
    perm: i8,
) -> Result<AclBinding> {
    Ok(AclBinding {
        resource_type: ResourceType::from_code(rt).context("resource type")?,
        resource_name: name.to_string(),
        pattern_type: PatternType::from_code(pt).context("pattern type")?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(op).context("operation")?,
        permission: Permission::from_code(perm).context("permission")?,
    })
}

/// One line per ACL, in kafka-acls.sh's words.
fn show(a: &AclBinding) -> String {
    format!(
        "{} is {} {} from host {} on {} {} ({})",
        a.principal,
        if a.permission == Permission::Allow {
            "allowed"
        } else {
            "denied"
        },
        a.operation,
        a.host,
        a.resource_type,
        a.resource_name,
        a.pattern_type
    )
}
