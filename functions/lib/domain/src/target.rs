//! A target: the customers a promotion reaches, as a listing, an export, a count or the
//! annual report selects them. Conditions on the segment and on cluster fields, each
//! with one or several values (a customer meets a condition when it holds any of them),
//! combined with `match=all` (every condition, the default) or `match=any` (at least
//! one). Read from the query once (`segment=a,b`, `cluster.tier=AA,A`, `match=any`)
//! into a canonical form, so the same combination written in another order is the same
//! target, and continues the same cursors.
//!
//! Values are separated by commas; a value holding a comma writes it as `\,` and a
//! backslash before a comma or another backslash as `\\` (any other backslash is
//! itself).

use crate::field::{FieldDef, FieldValueError};

/// The query parameter of the segment condition.
pub const SEGMENT_PARAM: &str = "segment";
/// The query prefix of a cluster condition: `?cluster.<field>=<value>[,<value>...]`.
pub const CLUSTER_PREFIX: &str = "cluster.";
/// The query parameter that combines the conditions.
pub const MATCH_PARAM: &str = "match";
/// The CRM's cluster promotions combine at most 50 conditions.
pub const MAX_CONDITIONS: usize = 50;
/// Values over every condition: each is a membership partition walked per shard, so
/// this bounds the reads of one page of a `match=any` listing.
pub const MAX_VALUES: usize = 100;

/// How a target combines its conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Match {
    /// Every condition holds.
    #[default]
    All,
    /// At least one condition holds.
    Any,
}

impl Match {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Any => "any",
        }
    }
}

/// What a condition is about. Ordered as the canonical form lists conditions: the
/// segment first, then cluster fields by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Segment,
    /// A cluster field, by name.
    Cluster(String),
}

impl Subject {
    /// The query parameter that names it.
    pub fn param(&self) -> String {
        match self {
            Self::Segment => SEGMENT_PARAM.to_owned(),
            Self::Cluster(field) => format!("{CLUSTER_PREFIX}{field}"),
        }
    }
}

/// One condition: the customer's segment, or its value of one cluster field, is one of
/// `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub subject: Subject,
    /// Index keys, sorted and distinct: segment ids, or cluster value keys
    /// ([`FieldDef::cluster_key`], the query spelling of a typed value).
    pub values: Vec<String>,
}

/// Why a query does not name a target. Each is a 400 for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`match` must be `all` or `any`, not `{0}`")]
    BadMatch(String),
    #[error("at most {MAX_CONDITIONS} conditions (`segment` and `cluster.<field>`)")]
    TooManyConditions,
    #[error("at most {MAX_VALUES} values over all conditions")]
    TooManyValues,
    #[error("`{0}` is given twice; list its values once, separated by commas")]
    Repeated(String),
    #[error("`{param}` lists `{value}` twice")]
    RepeatedValue { param: String, value: String },
    #[error("`{0}` is not a cluster field")]
    NotCluster(String),
    #[error("{param} {error}")]
    BadValue {
        param: String,
        error: FieldValueError,
    },
    #[error("`{0}` is not a condition")]
    NotCondition(String),
}

/// A validated, canonical combination of conditions; no condition selects everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Sorted by subject, each subject once.
    conditions: Vec<Condition>,
    /// [`Match::All`] whenever there is at most one condition (both mean the same).
    matching: Match,
}

impl Target {
    /// Whether a query parameter is part of a target (the rest is paging and format).
    pub fn is_param(name: &str) -> bool {
        name == SEGMENT_PARAM || name == MATCH_PARAM || name.starts_with(CLUSTER_PREFIX)
    }

    /// Reads a target from query parameters (only those [`Target::is_param`] accepts),
    /// checking cluster fields and values against the tenant's `fields`. Segment ids are
    /// taken as they are: an unknown one selects nobody, as a lone `?segment=` does.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        fields: &[FieldDef],
    ) -> Result<Target, TargetError> {
        let mut matching = None;
        let mut raw = Vec::new();
        for (name, value) in params {
            if name == MATCH_PARAM {
                if matching.is_some() {
                    return Err(TargetError::Repeated(MATCH_PARAM.into()));
                }
                matching = Some(match value {
                    "all" => Match::All,
                    "any" => Match::Any,
                    other => return Err(TargetError::BadMatch(other.to_owned())),
                });
            } else if name == SEGMENT_PARAM {
                raw.push((Subject::Segment, value));
            } else if let Some(field) = name.strip_prefix(CLUSTER_PREFIX) {
                raw.push((Subject::Cluster(field.to_owned()), value));
            } else {
                return Err(TargetError::NotCondition(name.to_owned()));
            }
        }
        if raw.len() > MAX_CONDITIONS {
            return Err(TargetError::TooManyConditions);
        }
        let mut conditions: Vec<Condition> = Vec::with_capacity(raw.len());
        let mut total = 0;
        for (subject, value) in raw {
            let param = subject.param();
            if conditions.iter().any(|c| c.subject == subject) {
                return Err(TargetError::Repeated(param));
            }
            let written = split_values(value);
            total += written.len();
            if total > MAX_VALUES {
                return Err(TargetError::TooManyValues);
            }
            let mut values = match &subject {
                Subject::Segment => written,
                Subject::Cluster(name) => {
                    let field = fields
                        .iter()
                        .find(|f| f.name == *name && f.cluster)
                        .ok_or_else(|| TargetError::NotCluster(name.clone()))?;
                    written
                        .iter()
                        .map(|raw| {
                            let value = field.parse_query_value(raw).map_err(|error| {
                                TargetError::BadValue {
                                    param: param.clone(),
                                    error,
                                }
                            })?;
                            Ok(FieldDef::cluster_key(&value))
                        })
                        .collect::<Result<Vec<_>, TargetError>>()?
                }
            };
            values.sort();
            if let Some(twice) = values.windows(2).find(|w| w[0] == w[1]) {
                return Err(TargetError::RepeatedValue {
                    param,
                    value: twice[0].clone(),
                });
            }
            conditions.push(Condition { subject, values });
        }
        conditions.sort_by(|a, b| a.subject.cmp(&b.subject));
        let matching = match conditions.len() {
            0 | 1 => Match::All,
            _ => matching.unwrap_or_default(),
        };
        Ok(Target {
            conditions,
            matching,
        })
    }

    /// Sorted by subject.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    pub fn matching(&self) -> Match {
        self.matching
    }

    /// No condition: every customer.
    pub fn is_everyone(&self) -> bool {
        self.conditions.is_empty()
    }

    /// The one value of the one condition, when that is all the target is: what a
    /// single-filter listing (`?segment=s`, `?cluster.tier=AA`) always was.
    pub fn single(&self) -> Option<(&Subject, &str)> {
        match self.conditions.as_slice() {
            [Condition { subject, values }] if values.len() == 1 => {
                Some((subject, values[0].as_str()))
            }
            _ => None,
        }
    }

    /// Whether a customer is in the target, given its value for each subject (its
    /// segment id, its value key of a cluster field; a customer holds at most one each).
    pub fn holds<'a>(&self, value_of: impl Fn(&Subject) -> Option<&'a str>) -> bool {
        let meets = |condition: &Condition| {
            value_of(&condition.subject).is_some_and(|held| {
                condition
                    .values
                    .binary_search_by(|v| v.as_str().cmp(held))
                    .is_ok()
            })
        };
        match self.matching {
            Match::All => self.conditions.iter().all(meets),
            Match::Any => self.conditions.iter().any(meets),
        }
    }

    /// The canonical spelling, e.g. `segment=s1&cluster.tier=A,AA&match=any`: one
    /// string per target, for cursor scopes. `match` is only written when it is `any`.
    /// Values escape `\`, `,` and `&` with a backslash, so the spelling is unambiguous;
    /// a single value without those characters reads exactly as the query wrote it.
    pub fn canonical_query(&self) -> String {
        let mut parts: Vec<String> = self
            .conditions
            .iter()
            .map(|c| {
                let values: Vec<String> = c.values.iter().map(|v| escape(v)).collect();
                format!("{}={}", c.subject.param(), values.join(","))
            })
            .collect();
        if self.matching == Match::Any {
            parts.push(format!("{MATCH_PARAM}=any"));
        }
        parts.join("&")
    }
}

/// The values of one parameter: split at commas that no backslash escapes.
fn split_values(raw: &str) -> Vec<String> {
    let mut values = vec![String::new()];
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let current = values.last_mut().expect("never empty");
        match c {
            '\\' if matches!(chars.peek(), Some(',' | '\\')) => {
                current.push(chars.next().expect("peeked"));
            }
            ',' => values.push(String::new()),
            other => current.push(other),
        }
    }
    values
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '&') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldDraft;
    use serde_json::json;

    fn fields() -> Vec<FieldDef> {
        let field = |body| {
            FieldDraft::parse(&body)
                .expect("a valid field")
                .into_field(chrono::Utc::now())
        };
        vec![
            field(
                json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B,C"], "cluster": true}),
            ),
            field(json!({"name": "distributor", "type": "boolean", "cluster": true})),
            field(json!({"name": "employees", "type": "integer", "cluster": true})),
            field(json!({"name": "note", "type": "string"})),
        ]
    }

    fn parse(params: &[(&str, &str)]) -> Result<Target, TargetError> {
        Target::parse(params.iter().copied(), &fields())
    }

    #[test]
    fn values_split_at_unescaped_commas() {
        assert_eq!(split_values("AA,A"), ["AA", "A"]);
        assert_eq!(split_values(""), [""]);
        assert_eq!(split_values("a,"), ["a", ""]);
        assert_eq!(split_values(r"B\,C,A"), ["B,C", "A"]);
        assert_eq!(split_values(r"a\\,b"), [r"a\", "b"]);
        assert_eq!(split_values(r"a\b\"), [r"a\b\"]);
    }

    #[test]
    fn the_canonical_form_ignores_order_and_spelling() {
        let one = parse(&[
            ("cluster.tier", "AA,A"),
            ("segment", "s2,s1"),
            ("cluster.employees", "010"),
        ])
        .unwrap();
        let other = parse(&[
            ("cluster.employees", "10"),
            ("segment", "s1,s2"),
            ("match", "all"),
            ("cluster.tier", "A,AA"),
        ])
        .unwrap();
        assert_eq!(one, other);
        assert_eq!(
            one.canonical_query(),
            "segment=s1,s2&cluster.employees=10&cluster.tier=A,AA"
        );
        let any = parse(&[
            ("cluster.tier", r"B\,C"),
            ("segment", "s&1"),
            ("match", "any"),
        ]);
        assert_eq!(
            any.unwrap().canonical_query(),
            r"segment=s\&1&cluster.tier=B\,C&match=any"
        );
        // One condition: `any` and `all` are the same target, and a single value reads
        // as the single-filter listing always wrote it.
        let single = parse(&[("cluster.distributor", "true"), ("match", "any")]).unwrap();
        assert_eq!(single.matching(), Match::All);
        assert_eq!(single.canonical_query(), "cluster.distributor=true");
        assert_eq!(
            single.single(),
            Some((&Subject::Cluster("distributor".into()), "true"))
        );
        assert!(parse(&[]).unwrap().is_everyone());
        assert_eq!(parse(&[]).unwrap().canonical_query(), "");
    }

    #[test]
    fn holds_follows_all_and_any() {
        let all = parse(&[("segment", "gold"), ("cluster.tier", "AA,A")]).unwrap();
        let any = parse(&[
            ("segment", "gold"),
            ("cluster.tier", "AA,A"),
            ("match", "any"),
        ])
        .unwrap();
        let customer = |segment: Option<&'static str>, tier: Option<&'static str>| {
            move |subject: &Subject| match subject {
                Subject::Segment => segment,
                Subject::Cluster(f) if f == "tier" => tier,
                Subject::Cluster(_) => None,
            }
        };
        assert!(all.holds(customer(Some("gold"), Some("A"))));
        assert!(!all.holds(customer(Some("gold"), Some("B,C"))));
        assert!(!all.holds(customer(None, Some("AA"))));
        assert!(any.holds(customer(None, Some("AA"))));
        assert!(any.holds(customer(Some("gold"), None)));
        assert!(!any.holds(customer(Some("silver"), Some("B,C"))));
        assert!(Target::default().holds(customer(None, None)));
    }

    #[test]
    fn bad_combinations_say_what_is_wrong() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("cluster.nope", "1")], "`nope` is not a cluster field"),
            (&[("cluster.note", "x")], "`note` is not a cluster field"),
            (
                &[("cluster.distributor", "yes")],
                "cluster.distributor must be true or false",
            ),
            (&[("cluster.tier", "AA,Z")], "cluster.tier must be one of"),
            (&[("cluster.tier", "AA,AA")], "lists `AA` twice"),
            (&[("cluster.employees", "1,01")], "lists `1` twice"),
            (
                &[("cluster.tier", "AA"), ("cluster.tier", "A")],
                "`cluster.tier` is given twice",
            ),
            (&[("segment", "a"), ("segment", "b")], "`segment` is given"),
            (&[("match", "most")], "`match` must be `all` or `any`"),
            (
                &[("match", "any"), ("match", "all")],
                "`match` is given twice",
            ),
            (&[("email", "a@b.co")], "`email` is not a condition"),
        ];
        for (params, expected) in cases {
            let error = parse(params).unwrap_err().to_string();
            assert!(error.contains(expected), "{params:?}: {error}");
        }
        let many: Vec<(String, String)> = (0..=MAX_CONDITIONS)
            .map(|i| (format!("cluster.f{i}"), "1".to_owned()))
            .collect();
        let many = Target::parse(many.iter().map(|(k, v)| (k.as_str(), v.as_str())), &[]);
        assert_eq!(many, Err(TargetError::TooManyConditions));
        let values: Vec<String> = (0..=MAX_VALUES).map(|i| format!("s{i}")).collect();
        let joined = values.join(",");
        assert_eq!(
            parse(&[("segment", joined.as_str())]),
            Err(TargetError::TooManyValues)
        );
    }
}
