//! What every customer listing shares (`/customers`, its export, the cluster member
//! lists and the filtered annual report): reading the one filter from the query, the
//! cursor scope that binds a cursor to it, and a page as clients see it.

use domain::FieldDef;
use store::{CustomerFilter, Page};

use crate::App;
use crate::http::{Call, Reply};
use crate::problem::ApiError;

/// The query prefix of a cluster filter: `?cluster.<field>=<value>`.
pub(crate) const CLUSTER_PREFIX: &str = "cluster.";

/// The cursor scope of a filtered listing.
pub(crate) fn listing_scope(filter: &CustomerFilter) -> String {
    match filter {
        CustomerFilter::All => "customers".to_owned(),
        CustomerFilter::Segment(id) => format!("customers?segment={id}"),
        CustomerFilter::Cluster { field, value_key } => {
            format!("customers?cluster.{field}={value_key}")
        }
    }
}

/// Which customers a listing (or an export) selects.
pub(crate) enum Selection {
    /// Walked with a store query: everyone, a segment's or a cluster value's customers.
    Filter(CustomerFilter),
    /// The one customer with this email, if any.
    Email(String),
}

/// Reads the listing's one filter: `?segment=`, `?email=` or one `?cluster.<field>=`.
pub(crate) fn selection(call: &Call, fields: &[FieldDef]) -> Result<Selection, ApiError> {
    let filters: Vec<&(String, String)> = call
        .query
        .iter()
        .filter(|(k, _)| k == "segment" || k == "email" || k.starts_with(CLUSTER_PREFIX))
        .collect();
    if filters.len() > 1 {
        return Err(ApiError::BadRequest(
            "use at most one of `segment`, `email` and `cluster.<field>`".into(),
        ));
    }
    let selection = match filters.first().map(|(k, v)| (k.as_str(), v.as_str())) {
        None => Selection::Filter(CustomerFilter::All),
        Some(("email", email)) => Selection::Email(email.to_owned()),
        Some(("segment", segment)) => {
            Selection::Filter(CustomerFilter::Segment(segment.to_owned()))
        }
        Some((key, raw)) => {
            let name = &key[CLUSTER_PREFIX.len()..];
            Selection::Filter(cluster_filter(fields, name, raw)?)
        }
    };
    Ok(selection)
}

/// One page of the customers a filter selects, as clients see them. The cursor scope
/// names the filter, so a cursor only continues the listing it came from (whichever
/// endpoint serves it: `/customers?cluster.x=v` and `/clusters/x/members?value=v`
/// share their pages).
pub(crate) async fn filtered_page(
    app: &App,
    call: &Call,
    fields: &[FieldDef],
    filter: &CustomerFilter,
) -> Result<Reply, ApiError> {
    let scope = listing_scope(filter);
    let page = app
        .store
        .list_customers(
            &call.tenant,
            filter,
            call.limit()?,
            call.page_start(app, &scope)?,
        )
        .await?;
    let page = Page {
        items: page.items.into_iter().map(|c| c.visible(fields)).collect(),
        next: page.next,
    };
    Reply::page(app, call, &scope, page)
}

pub(crate) fn cluster_filter(
    fields: &[FieldDef],
    name: &str,
    raw: &str,
) -> Result<CustomerFilter, ApiError> {
    let field = fields
        .iter()
        .find(|f| f.name == name && f.cluster)
        .ok_or_else(|| ApiError::BadRequest(format!("`{name}` is not a cluster field")))?;
    let value = field
        .parse_query_value(raw)
        .map_err(|detail| ApiError::BadRequest(format!("cluster.{name} {detail}")))?;
    Ok(CustomerFilter::Cluster {
        field: name.to_owned(),
        value_key: FieldDef::cluster_key(&value),
    })
}
