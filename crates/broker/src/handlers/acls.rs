//! CreateAcls, DescribeAcls and DeleteAcls: the ACLs are records of the metadata log
//! ([`MetadataRecord::Acl`]), checked as Kafka's controller checks them. Without an
//! authorizer the three answer SECURITY_DISABLED, as in Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::str;
use crate::metadata::MetadataRecord;
use crate::security::acl::*;
use crate::Broker;

const DISABLED: &str = "No Authorizer is configured.";

fn binding(c: &create_acls_request::AclCreation) -> Result<AclBinding, String> {
    let unknown = |what: &str, code: i8| format!("Invalid {what} {code}");
    let acl = AclBinding {
        resource_type: ResourceType::from_code(c.resource_type)
            .ok_or_else(|| unknown("resourceType", c.resource_type))?,
        resource_name: c.resource_name.to_string(),
        pattern_type: PatternType::from_code(c.resource_pattern_type)
            .ok_or_else(|| unknown("patternType", c.resource_pattern_type))?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: Operation::from_code(c.operation)
            .ok_or_else(|| unknown("operation", c.operation))?,
        permission: Permission::from_code(c.permission_type)
            .ok_or_else(|| unknown("permissionType", c.permission_type))?,
    };
    acl.validate()?;
    Ok(acl)
}

pub fn create(broker: &Arc<Broker>, request: CreateAclsRequest) -> CreateAclsResponse {
    let error = |e: ResponseError, m: &str| {
        AclCreationResult::default()
            .with_error_code(e.code())
            .with_error_message(Some(str(m)))
    };
    let mut response = CreateAclsResponse::default();
    if broker.authorizer.is_none() {
        response.results = request
            .creations
            .iter()
            .map(|_| error(ResponseError::SecurityDisabled, DISABLED))
            .collect();
        return response;
    }
    let image = broker.controller.image();
    let existing: BTreeSet<&AclBinding> = image.acls.values().collect();
    let parsed: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding).collect();
    // an ACL that exists already, or twice in the request, is created once
    let mut new = BTreeSet::new();
    let records: Vec<MetadataRecord> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .filter(|acl| !existing.contains(acl) && new.insert(*acl))
        .map(|acl| MetadataRecord::Acl {
            id: Uuid::new_v4(),
            acl: acl.clone(),
        })
        .collect();
    let committed = if records.is_empty() {
        Ok(())
    } else {
        broker.controller.commit(&records).map(|_| ())
    };
    response.results = parsed
        .into_iter()
        .map(|p| match (p, &committed) {
            (Err(why), _) => error(ResponseError::InvalidRequest, &why),
            (Ok(_), Err(e)) => error(ResponseError::NotController, &format!("{e:#}")),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    response
}

pub fn describe(broker: &Arc<Broker>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    if broker.authorizer.is_none() {
        response.error_code = ResponseError::SecurityDisabled.code();
        response.error_message = Some(str("No Authorizer is configured on the broker"));
        return response;
    }
    let filter = match AclFilter::from_codes(
        request.resource_type_filter,
        request.resource_name_filter.map(|s| s.to_string()),
        request.pattern_type_filter,
        request.principal_filter.map(|s| s.to_string()),
        request.host_filter.map(|s| s.to_string()),
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(why) => {
            response.error_code = ResponseError::InvalidRequest.code();
            response.error_message = Some(str(&why));
            return response;
        }
    };
    let image = broker.controller.image();
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.values().filter(|a| filter.matches(a)) {
        by_resource
            .entry((
                acl.resource_type.code(),
                acl.resource_name.clone(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str(&acl.principal))
                    .with_host(str(&acl.host))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    response.resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(str(&name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    response
}

pub fn delete(broker: &Arc<Broker>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let failed = |e: ResponseError, m: &str| {
        DeleteAclsFilterResult::default()
            .with_error_code(e.code())
            .with_error_message(Some(str(m)))
    };
    let mut response = DeleteAclsResponse::default();
    if broker.authorizer.is_none() {
        response.filter_results = request
            .filters
            .iter()
            .map(|_| failed(ResponseError::SecurityDisabled, DISABLED))
            .collect();
        return response;
    }
    let image = broker.controller.image();
    let mut deleted: BTreeSet<Uuid> = BTreeSet::new();
    // per filter: the ACLs it matches (an ACL two filters match is listed under both)
    let outcomes: Vec<Result<Vec<(Uuid, &AclBinding)>, String>> = request
        .filters
        .iter()
        .map(|f| {
            let filter = AclFilter::from_codes(
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.to_string()),
                f.pattern_type_filter,
                f.principal_filter.as_ref().map(|s| s.to_string()),
                f.host_filter.as_ref().map(|s| s.to_string()),
                f.operation,
                f.permission_type,
            )
            .map_err(|why| {
                if why.contains("resourceType") || why.contains("patternType") {
                    "Unknown patternFilter.".to_string()
                } else {
                    "Unknown entryFilter.".to_string()
                }
            })?;
            let matching: Vec<(Uuid, &AclBinding)> = image
                .acls
                .iter()
                .filter(|(_, acl)| filter.matches(acl))
                .map(|(id, acl)| (*id, acl))
                .collect();
            deleted.extend(matching.iter().map(|(id, _)| *id));
            Ok(matching)
        })
        .collect();
    let records: Vec<MetadataRecord> = deleted
        .iter()
        .map(|id| MetadataRecord::RemoveAcl { id: *id })
        .collect();
    let committed = if records.is_empty() {
        Ok(())
    } else {
        broker.controller.commit(&records).map(|_| ())
    };
    response.filter_results = outcomes
        .into_iter()
        .map(|outcome| match (outcome, &committed) {
            (Err(why), _) => failed(ResponseError::InvalidRequest, &why),
            (Ok(_), Err(e)) => failed(ResponseError::NotController, &format!("{e:#}")),
            (Ok(acls), Ok(())) => DeleteAclsFilterResult::default().with_matching_acls(
                acls.into_iter()
                    .map(|(_, acl)| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(acl.resource_type.code())
                            .with_resource_name(str(&acl.resource_name))
                            .with_pattern_type(acl.pattern_type.code())
                            .with_principal(str(&acl.principal))
                            .with_host(str(&acl.host))
                            .with_operation(acl.operation.code())
                            .with_permission_type(acl.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    response
}
