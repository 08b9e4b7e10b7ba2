//! Targets: the customers that meet several segment and cluster conditions at once
//! (`domain::target`), listed page by page or counted, never by a Scan: `match=any`
//! merges the conditions' membership rows shard by shard, `match=all` walks the smallest
//! condition's rows and keeps the customers whose `memberships` meet every condition
//! (docs/data-model.md "Combined targets").

use std::collections::{BTreeSet, HashMap};

use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt};

use domain::target::{Match, Subject, Target};
use domain::{Customer, FieldDef};

use crate::counts::{MEMBERSHIPS, Membership, decode_memberships, stamp_of};
use crate::customers::{CustomerFilter, customer_keys, membership_partition};
use crate::keys::{self, CUSTOMER, sk};
use crate::write::Item;
use crate::{Page, PageKey, Store, StoreError, StoreResult};

/// Rounds of one target page: each reads a wave of shards' membership rows at once,
/// then the customers it needs with one wave of BatchGetItem.
const WALK_ROUNDS: usize = 8;
/// Candidates a `match=all` round reads per shard at least: one BatchGetItem's worth
/// (more, doubling, while rounds find too few members).
const CANDIDATES_PER_SHARD: usize = 100;
/// Customers a `match=all` page examines before it comes back short (give or take a
/// round), with a cursor after the last customer examined.
const MAX_CANDIDATES: usize = 1000;
/// Membership Queries in flight at once: a wave's shards times each shard's partitions.
const QUERIES_IN_FLIGHT: usize = 64;
/// Customers one shard's count of an `all` target holds in memory at once.
const COUNT_CHUNK: usize = 500;

/// The page key fields of a target walk: the shard, the last customer id examined in
/// it, and which condition drives a `match=all` walk.
const SHARD_KEY: &str = "shard";
const AFTER_KEY: &str = "after";
const DRIVER_KEY: &str = "driver";

impl CustomerFilter {
    /// The single-filter listing a target is, when it is one: no condition, or one
    /// value of one condition. Such targets keep that listing's pages and cursors.
    pub fn single(target: &Target) -> Option<CustomerFilter> {
        if target.is_everyone() {
            return Some(Self::All);
        }
        let (subject, value) = target.single()?;
        Some(match subject {
            Subject::Segment => Self::Segment(value.to_owned()),
            Subject::Cluster(field) => Self::Cluster {
                field: field.clone(),
                value_key: value.to_owned(),
            },
        })
    }
}

/// What a target walk read, logged at debug level (`target walk`) so that the cost rule
/// can be checked: membership rows grow with the driving condition (`all`) or with the
/// sum of the conditions (`any`), customer items with the rows, never with the tenant.
#[derive(Debug, Clone, Copy, Default)]
struct Reads {
    /// Membership rows read by Query (keys only).
    rows: usize,
    /// Customer items asked for by BatchGetItem.
    customers: usize,
}

impl std::ops::AddAssign for Reads {
    fn add_assign(&mut self, other: Reads) {
        self.rows += other.rows;
        self.customers += other.customers;
    }
}

/// How the store walks a target.
enum Plan<'a> {
    /// No condition, or one value of one condition: the single-filter listing.
    Filter(CustomerFilter),
    /// The members of any of these memberships (`match=any`, or one condition with
    /// several values): each shard's rows of all of them, merged by id, once each.
    Union(Vec<Membership>),
    /// `match=all` over several conditions (each a list of memberships, any of which
    /// meets it): one condition's rows drive, and their customers are kept when the
    /// `memberships` on their items meet every condition.
    Intersect {
        conditions: Vec<Vec<Membership>>,
        check: Check<'a>,
    },
}

/// Whether a customer item meets a target, read from the memberships it carries (the
/// same transaction writes them and the membership rows).
struct Check<'a> {
    target: &'a Target,
    /// The `created_at` stamp of each cluster field the target names: a value written
    /// under an earlier field of the same name is not the field's.
    stamps: HashMap<String, String>,
}

impl Check<'_> {
    fn keeps(&self, item: &Item) -> bool {
        let held = decode_memberships(item.get(MEMBERSHIPS));
        self.target.holds(|subject| {
            held.iter()
                .find_map(|membership| match (subject, membership) {
                    (Subject::Segment, Membership::Segment(id)) => Some(id.as_str()),
                    (
                        Subject::Cluster(name),
                        Membership::Cluster {
                            field,
                            stamp,
                            value_key,
                        },
                    ) if field == name && self.stamps.get(name) == Some(stamp) => {
                        Some(value_key.as_str())
                    }
                    _ => None,
                })
        })
    }
}

fn plan<'a>(target: &'a Target, fields: &[FieldDef]) -> StoreResult<Plan<'a>> {
    if let Some(filter) = CustomerFilter::single(target) {
        return Ok(Plan::Filter(filter));
    }
    let mut stamps = HashMap::new();
    for condition in target.conditions() {
        if let Subject::Cluster(name) = &condition.subject {
            let field = fields
                .iter()
                .find(|f| f.name == *name && f.cluster)
                .ok_or_else(|| {
                    StoreError::Internal(format!("the target names `{name}`, no cluster field"))
                })?;
            stamps.insert(name.clone(), stamp_of(field));
        }
    }
    let conditions: Vec<Vec<Membership>> = target
        .conditions()
        .iter()
        .map(|condition| {
            condition
                .values
                .iter()
                .map(|value| match &condition.subject {
                    Subject::Segment => Membership::Segment(value.clone()),
                    Subject::Cluster(field) => Membership::Cluster {
                        field: field.clone(),
                        stamp: stamps[field].clone(),
                        value_key: value.clone(),
                    },
                })
                .collect()
        })
        .collect();
    if target.matching() == Match::Any || conditions.len() == 1 {
        return Ok(Plan::Union(conditions.into_iter().flatten().collect()));
    }
    Ok(Plan::Intersect {
        conditions,
        check: Check { target, stamps },
    })
}

/// Where a target walk stands: a shard, and the last customer id examined in it
/// (`None`: the shard's start). Every membership puts a customer in the same shard and
/// sorts it by id, so one position orders every combination the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    shard: u8,
    after: Option<String>,
}

impl Position {
    fn key(&self, driver: Option<usize>) -> PageKey {
        let mut key = std::collections::BTreeMap::from([(
            SHARD_KEY.to_owned(),
            format!("{:02}", self.shard),
        )]);
        if let Some(after) = &self.after {
            key.insert(AFTER_KEY.to_owned(), after.clone());
        }
        if let Some(driver) = driver {
            key.insert(DRIVER_KEY.to_owned(), driver.to_string());
        }
        PageKey(key)
    }

    /// Where a page starts: the first shard's start, or where the cursor's page stopped.
    fn resume(start: Option<&PageKey>) -> StoreResult<(Position, Option<usize>)> {
        match start {
            None => Ok((
                Position {
                    shard: 0,
                    after: None,
                },
                None,
            )),
            Some(key) => Self::from_key(key),
        }
    }

    /// The position and driver of a page key; only keys this walk wrote are accepted.
    fn from_key(key: &PageKey) -> StoreResult<(Position, Option<usize>)> {
        let known = [SHARD_KEY, AFTER_KEY, DRIVER_KEY];
        if key.0.keys().any(|k| !known.contains(&k.as_str())) {
            return Err(StoreError::InvalidCursor);
        }
        let shard = key
            .0
            .get(SHARD_KEY)
            .filter(|s| s.len() == 2)
            .and_then(|s| s.parse::<u8>().ok())
            .filter(|&s| s < keys::SHARDS)
            .ok_or(StoreError::InvalidCursor)?;
        let driver = match key.0.get(DRIVER_KEY) {
            None => None,
            Some(d) => Some(d.parse().map_err(|_| StoreError::InvalidCursor)?),
        };
        let after = key.0.get(AFTER_KEY).cloned();
        Ok((Position { shard, after }, driver))
    }
}

/// The ids one shard holds for some memberships after a position, merged.
struct ShardRun {
    /// Sorted, each once, at most the limit asked for.
    ids: Vec<String>,
    /// Rows read (a customer in several memberships counts once per membership).
    rows: usize,
    /// Whether `ids` reach the shard's end.
    exhausted: bool,
}

/// What one page of a walk found: raw customer items, in listing order.
struct Walked {
    items: Vec<Item>,
    next: Option<Position>,
    reads: Reads,
}

/// The customer id of a customer item.
fn id_of(item: &Item) -> Option<&str> {
    item.get(keys::SK)?.as_s().ok()?.strip_prefix(CUSTOMER)
}

impl Store {
    /// One page of the customers of a target. A single-filter target is the listing it
    /// always was ([`Store::list_customers`], same cursors); a combination walks the
    /// membership rows shard after shard, by id within a shard (the same order):
    /// `match=any` merges the rows of every value of every condition and fetches the
    /// page's customers in one batch; `match=all` reads the rows of the smallest
    /// condition (by the stream's counts, chosen on the first page and kept in the
    /// cursor), fetches those customers and keeps the ones whose `memberships` meet
    /// every condition. A page reads a bounded amount ([`WALK_ROUNDS`],
    /// [`MAX_CANDIDATES`]), so it may come back short, with a cursor to go on.
    pub async fn list_target(
        &self,
        tenant: &str,
        target: &Target,
        fields: &[FieldDef],
        limit: usize,
        start: Option<PageKey>,
    ) -> StoreResult<Page<Customer>> {
        let plan = plan(target, fields)?;
        let (memberships, check, driver, position) = match &plan {
            Plan::Filter(filter) => {
                return self.list_customers(tenant, filter, limit, start).await;
            }
            Plan::Union(memberships) => match Position::resume(start.as_ref())? {
                (position, None) => (memberships.as_slice(), None, None, position),
                _ => return Err(StoreError::InvalidCursor),
            },
            Plan::Intersect { conditions, check } => {
                let (position, driver) = match Position::resume(start.as_ref())? {
                    (position, Some(driver)) if driver < conditions.len() => (position, driver),
                    (position, None) if start.is_none() => {
                        (position, self.choose_driver(tenant, conditions).await?)
                    }
                    _ => return Err(StoreError::InvalidCursor),
                };
                (
                    conditions[driver].as_slice(),
                    Some(check),
                    Some(driver),
                    position,
                )
            }
        };
        let walked = self
            .walk_page(tenant, memberships, check, limit, position)
            .await?;
        tracing::debug!(
            rows = walked.reads.rows,
            customers = walked.reads.customers,
            driver,
            "target walk"
        );
        Ok(Page {
            items: walked
                .items
                .into_iter()
                .map(serde_dynamo::aws_sdk_dynamodb_1::from_item)
                .collect::<Result<_, _>>()?,
            next: walked.next.map(|position| position.key(driver)),
        })
    }

    /// The ids of every customer of a target with at least one condition, in listing
    /// order, exactly as of now (strongly consistent reads): what a count answers and
    /// a filtered report starts from. Keys only where the rows decide (one condition,
    /// `match=any`: every shard's rows merged by id); for `match=all` the smallest
    /// condition's rows, then its customers' `memberships` (BatchGetItem charges the
    /// whole item, whatever it returns). Shards are read in parallel.
    pub async fn target_members(
        &self,
        tenant: &str,
        target: &Target,
        fields: &[FieldDef],
    ) -> StoreResult<Vec<String>> {
        let (ids, reads) = match plan(target, fields)? {
            Plan::Filter(CustomerFilter::All) => {
                return Err(StoreError::Internal(
                    "a target without conditions is every customer; list them instead".into(),
                ));
            }
            Plan::Filter(filter) => {
                let ids = self.member_ids(tenant, &filter).await?;
                let rows = ids.len();
                (ids, Reads { rows, customers: 0 })
            }
            Plan::Union(memberships) => self.members_of(tenant, &memberships, None).await?,
            Plan::Intersect { conditions, check } => {
                let driver = self.choose_driver(tenant, &conditions).await?;
                self.members_of(tenant, &conditions[driver], Some(&check))
                    .await?
            }
        };
        tracing::debug!(
            rows = reads.rows,
            customers = reads.customers,
            members = ids.len(),
            "target walk"
        );
        Ok(ids)
    }

    /// The condition with the fewest customers by the stream's counts (the segments'
    /// `customer_count`, the cluster value counters): one BatchGetItem of at most
    /// [`domain::target::MAX_VALUES`] small items. The counts may lag the writes; that
    /// only changes which condition drives, never the result.
    async fn choose_driver(
        &self,
        tenant: &str,
        conditions: &[Vec<Membership>],
    ) -> StoreResult<usize> {
        let count_key = |membership: &Membership| match membership {
            Membership::Segment(id) => (keys::tenant(tenant), sk(keys::SEGMENT, id)),
            Membership::Cluster {
                field, value_key, ..
            } => (
                keys::tenant(tenant),
                crate::counts::cluster_count_sk(field, value_key),
            ),
        };
        // The segment item and the value count item name their count differently.
        let count_attribute = |sk: &str| {
            if sk.starts_with(keys::SEGMENT) {
                crate::segments::SEGMENT_COUNT
            } else {
                crate::counts::VALUE_COUNT
            }
        };
        let wanted: Vec<(String, String)> = conditions.iter().flatten().map(count_key).collect();
        let number =
            |item: &Item, name: &str| -> Option<i64> { item.get(name)?.as_n().ok()?.parse().ok() };
        let counts: HashMap<(String, String), i64> = self
            .batch_get_items(&wanted)
            .await?
            .iter()
            .filter_map(|item| {
                let pk = item.get(keys::PK)?.as_s().ok()?.clone();
                let sk = item.get(keys::SK)?.as_s().ok()?.clone();
                let count = number(item, count_attribute(&sk)).unwrap_or(0);
                Some(((pk, sk), count.max(0)))
            })
            .collect();
        let size = |condition: &Vec<Membership>| -> i64 {
            condition
                .iter()
                .map(|m| counts.get(&count_key(m)).copied().unwrap_or(0))
                .sum()
        };
        Ok(conditions
            .iter()
            .enumerate()
            .map(|(index, condition)| (size(condition), index))
            .min()
            .map_or(0, |(_, index)| index))
    }

    /// The ids one shard holds in any of `memberships` after `after`, at most `limit`:
    /// each membership's partition read at once (keys only), merged by id.
    async fn shard_run(
        &self,
        tenant: &str,
        memberships: &[Membership],
        shard: u8,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> StoreResult<ShardRun> {
        let partitions: Vec<String> = memberships
            .iter()
            .map(|m| membership_partition(tenant, m, shard))
            .collect();
        let pages = try_join_all(
            partitions
                .iter()
                .map(|pk| self.query_sort_keys(pk, CUSTOMER, after, limit)),
        )
        .await?;
        let rows = pages.iter().map(|(ids, _)| ids.len()).sum();
        let more = pages.iter().any(|(_, more)| *more);
        let mut ids: Vec<String> = match <[_; 1]>::try_from(pages) {
            Ok([(ids, _)]) => ids,
            Err(pages) => pages
                .into_iter()
                .flat_map(|(ids, _)| ids)
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect(),
        };
        let exhausted = !more && limit.is_none_or(|limit| ids.len() <= limit);
        if let Some(limit) = limit {
            ids.truncate(limit);
        }
        Ok(ShardRun {
            ids,
            rows,
            exhausted,
        })
    }

    /// One page of a combination from `start`: rounds of a wave of shards (1, 2, 4, ...
    /// while shards run out; one when a shard has more), each the shards' merged rows
    /// and then the customers the page can use. With `check` (`match=all`) every
    /// candidate is fetched and kept only when it meets the target; without, every row
    /// is a member and only the customers the page takes are fetched.
    async fn walk_page(
        &self,
        tenant: &str,
        memberships: &[Membership],
        check: Option<&Check<'_>>,
        limit: usize,
        start: Position,
    ) -> StoreResult<Walked> {
        let mut walked = Walked {
            items: Vec::new(),
            next: None,
            reads: Reads::default(),
        };
        let widest = (QUERIES_IN_FLIGHT / memberships.len().max(1)).max(1);
        // `barren`: rounds in a row that stopped inside a shard without filling the page
        // (a selective `all`): each reads twice as many candidates, within the budget.
        let (mut position, mut wave, mut barren) = (start, 1, 0_u32);
        for _ in 0..WALK_ROUNDS {
            let room = limit - walked.items.len();
            let per_shard = match check {
                Some(_) => (room.max(CANDIDATES_PER_SHARD) << barren)
                    .min(MAX_CANDIDATES.saturating_sub(walked.reads.customers))
                    .max(room),
                None => room,
            };
            let first = position.shard;
            let end = (usize::from(first) + wave.min(widest)).min(usize::from(keys::SHARDS)) as u8;
            let runs = try_join_all((first..end).map(|shard| {
                let after = (shard == first)
                    .then_some(position.after.as_deref())
                    .flatten();
                self.shard_run(tenant, memberships, shard, after, Some(per_shard))
            }))
            .await?;
            walked.reads.rows += runs.iter().map(|r| r.rows).sum::<usize>();
            // Shards after one that has more cannot be used yet: their customers come
            // after that shard's.
            let usable = runs
                .iter()
                .position(|run| !run.exhausted)
                .map_or(runs.len(), |i| i + 1);
            let mut candidates: Vec<(usize, usize)> = runs[..usable]
                .iter()
                .enumerate()
                .flat_map(|(r, run)| (0..run.ids.len()).map(move |i| (r, i)))
                .collect();
            let every = candidates.len();
            if check.is_none() {
                candidates.truncate(room);
            }
            let wanted: Vec<(String, String)> = candidates
                .iter()
                .map(|&(r, i)| {
                    let id = &runs[r].ids[i];
                    (keys::customer_home(tenant, id), sk(CUSTOMER, id))
                })
                .collect();
            walked.reads.customers += wanted.len();
            let mut found: HashMap<String, Item> = self
                .batch_get_items(&wanted)
                .await?
                .into_iter()
                .filter_map(|item| Some((id_of(&item)?.to_owned(), item)))
                .collect();
            let mut examined = None;
            let mut full = false;
            for &(r, i) in &candidates {
                examined = Some((r, i));
                let Some(item) = found.remove(&runs[r].ids[i]) else {
                    continue;
                };
                if check.is_none_or(|check| check.keeps(&item)) {
                    walked.items.push(item);
                    if walked.items.len() == limit {
                        full = true;
                        break;
                    }
                }
            }
            // Past the shard of run `r` and any shards this round found empty after it.
            let past = |r: usize| {
                let mut next = r + 1;
                while runs
                    .get(next)
                    .is_some_and(|run| run.exhausted && run.ids.is_empty())
                {
                    next += 1;
                }
                Position {
                    shard: first + next as u8,
                    after: None,
                }
            };
            position = match examined {
                Some((r, i)) if full || candidates.len() < every => {
                    if runs[r].exhausted && i + 1 == runs[r].ids.len() {
                        past(r)
                    } else {
                        Position {
                            shard: first + r as u8,
                            after: Some(runs[r].ids[i].clone()),
                        }
                    }
                }
                // Every id of the usable runs was examined.
                _ => {
                    let r = usable - 1;
                    if runs[r].exhausted {
                        past(r)
                    } else {
                        Position {
                            shard: first + r as u8,
                            after: runs[r].ids.last().cloned(),
                        }
                    }
                }
            };
            wave = if position.after.is_none() {
                wave * 2
            } else {
                1
            };
            barren = if position.after.is_some() && !full {
                (barren + 1).min(4)
            } else {
                0
            };
            if position.shard >= keys::SHARDS {
                return Ok(walked);
            }
            if full || walked.reads.customers >= MAX_CANDIDATES {
                walked.next = Some(position);
                return Ok(walked);
            }
        }
        walked.next = Some(position);
        Ok(walked)
    }

    /// Every id of a combination, shard after shard ([`Store::target_members`]): a few
    /// shards at once, so that at most about [`QUERIES_IN_FLIGHT`] Queries are in flight.
    async fn members_of(
        &self,
        tenant: &str,
        memberships: &[Membership],
        check: Option<&Check<'_>>,
    ) -> StoreResult<(Vec<String>, Reads)> {
        let in_flight = (QUERIES_IN_FLIGHT / memberships.len().max(1)).max(1);
        let shards: Vec<(Vec<String>, Reads)> = futures_util::stream::iter(keys::shards())
            .map(|shard| self.shard_members(tenant, memberships, shard, check))
            .buffered(in_flight)
            .try_collect()
            .await?;
        let mut all = (Vec::new(), Reads::default());
        for (ids, reads) in shards {
            all.0.extend(ids);
            all.1 += reads;
        }
        Ok(all)
    }

    /// One shard of [`Store::members_of`]: its merged rows, and with `check` its
    /// customers' memberships, [`COUNT_CHUNK`] at a time.
    async fn shard_members(
        &self,
        tenant: &str,
        memberships: &[Membership],
        shard: u8,
        check: Option<&Check<'_>>,
    ) -> StoreResult<(Vec<String>, Reads)> {
        let run = self
            .shard_run(tenant, memberships, shard, None, None)
            .await?;
        let mut reads = Reads {
            rows: run.rows,
            customers: 0,
        };
        let Some(check) = check else {
            return Ok((run.ids, reads));
        };
        let mut kept = Vec::new();
        for chunk in run.ids.chunks(COUNT_CHUNK) {
            let wanted = customer_keys(tenant, chunk);
            reads.customers += wanted.len();
            let items = self.batch_get_items(&wanted).await?;
            kept.extend(
                items
                    .iter()
                    .filter(|item| check.keeps(item))
                    .filter_map(|item| id_of(item).map(str::to_owned)),
            );
        }
        Ok((kept, reads))
    }
}
