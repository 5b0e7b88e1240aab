//! Storage whose every operation costs the same however many objects the account holds:
//! a [`Table`] keeps one kind of object by id and in creation order, an [`Index`] keeps
//! which of them have a given value of a field (a customer, a charge, an event type), and
//! [`list_table`] pages a list from them, newest first, reading only the page (and the
//! objects a filter passes over) instead of sorting the whole collection.

use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

use foldhash::HashMap;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::state::Listed;

/// Objects of one kind, by id and in creation order (their `seq`).
///
/// Rows are behind pointers: appending in `seq` order leaves every B-tree node but the
/// last about half full, and a node holds its values inline, so inline a table of large
/// objects would keep nearly as much empty space as objects. The pointers are shared
/// ([`Table::insert_shared`]) so that an event's snapshot of an object is the row itself
/// until the row next changes, when [`Table::get_mut`] copies it: a snapshot never sees
/// a later change, and an object that does not change is never copied.
pub struct Table<T> {
    rows: BTreeMap<u64, Arc<T>>,
    ids: HashMap<String, u64>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            ids: HashMap::default(),
        }
    }
}

impl<T: Listed> Table<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.rows.get(self.ids.get(id)?).map(|row| &**row)
    }

    /// The object as stored, to keep or hand on without copying it.
    pub fn shared(&self, id: &str) -> Option<Arc<T>> {
        self.rows.get(self.ids.get(id)?).cloned()
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// The object's `seq`, by its id.
    pub fn seq_of(&self, id: &str) -> Option<u64> {
        self.ids.get(id).copied()
    }

    pub fn by_seq(&self, seq: u64) -> Option<&T> {
        self.rows.get(&seq).map(|row| &**row)
    }

    /// Adds (or replaces) an object, under its id and `seq`.
    pub fn insert(&mut self, row: T) {
        self.insert_shared(row);
    }

    /// Adds (or replaces) an object and answers it as stored, to keep as a snapshot.
    pub fn insert_shared(&mut self, row: T) -> Arc<T> {
        if let Some(old) = self.ids.insert(row.id().to_owned(), row.seq()) {
            self.rows.remove(&old);
        }
        let row = Arc::new(row);
        self.rows.insert(row.seq(), Arc::clone(&row));
        row
    }

    /// The oldest object.
    pub fn first(&self) -> Option<&T> {
        self.rows.first_key_value().map(|(_, row)| &**row)
    }

    /// Oldest first.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.rows.values().map(|row| &**row)
    }

    /// The objects created after `seq`, oldest first.
    pub fn after(&self, seq: u64) -> impl Iterator<Item = &T> {
        self.rows
            .range((Bound::Excluded(seq), Bound::Unbounded))
            .map(|(_, row)| &**row)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Changing a row copies it first if a snapshot shares it.
impl<T: Listed + Clone> Table<T> {
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.rows.get_mut(self.ids.get(id)?).map(Arc::make_mut)
    }

    /// Changes the object and answers it as stored, to keep or hand on without copying it.
    pub fn update(&mut self, id: &str, change: impl FnOnce(&mut T)) -> Option<Arc<T>> {
        let row = self.rows.get_mut(self.ids.get(id)?)?;
        change(Arc::make_mut(row));
        Some(Arc::clone(row))
    }

    /// The objects created after `seq`, oldest first, to change.
    pub fn after_mut(&mut self, seq: u64) -> impl Iterator<Item = &mut T> {
        self.rows
            .range_mut((Bound::Excluded(seq), Bound::Unbounded))
            .map(|(_, row)| Arc::make_mut(row))
    }

    pub fn remove(&mut self, id: &str) -> Option<T> {
        let seq = self.ids.remove(id)?;
        self.rows.remove(&seq).map(Arc::unwrap_or_clone)
    }
}

/// Which objects (by `seq`) have which value of a field; objects without one are in no set.
///
/// Each value is kept once, shared by its set and by every object filed under it: most
/// values (an event type, a customer) file many objects, and filing one more allocates
/// nothing.
#[derive(Default)]
pub struct Index {
    keys: HashMap<Arc<str>, BTreeSet<u64>>,
    /// Each indexed object's current value.
    of: HashMap<u64, Arc<str>>,
    /// Every object that has a value.
    any: BTreeSet<u64>,
}

impl Index {
    /// Files the object `seq` under `key` (`None`: under nothing), wherever it was before.
    pub fn set(&mut self, seq: u64, key: Option<&str>) {
        if self.of.get(&seq).map(|old| &**old) == key {
            return;
        }
        if let Some(old) = self.of.remove(&seq) {
            if let Some(set) = self.keys.get_mut(&old) {
                set.remove(&seq);
                if set.is_empty() {
                    self.keys.remove(&old);
                }
            }
            self.any.remove(&seq);
        }
        if let Some(key) = key {
            let shared = match self.keys.get_key_value(key) {
                Some((shared, _)) => Arc::clone(shared),
                None => Arc::from(key),
            };
            self.keys
                .entry(Arc::clone(&shared))
                .or_default()
                .insert(seq);
            self.of.insert(seq, shared);
            self.any.insert(seq);
        }
    }

    /// The objects filed under `key`.
    pub fn get(&self, key: &str) -> Candidates<'_> {
        Candidates::Sets(self.keys.get(key).into_iter().collect())
    }

    /// The objects filed under any key `wanted` accepts.
    pub fn matching(&self, wanted: impl Fn(&str) -> bool) -> Candidates<'_> {
        Candidates::Sets(
            self.keys
                .iter()
                .filter(|(key, _)| wanted(key))
                .map(|(_, set)| set)
                .collect(),
        )
    }

    /// The objects filed under some key.
    pub fn any(&self) -> Candidates<'_> {
        Candidates::Sets(vec![&self.any])
    }
}

/// Which objects of a table a list may show (before its filter).
pub enum Candidates<'a> {
    /// Every object.
    All,
    /// The objects in any of these sets of `seq`s.
    Sets(Vec<&'a BTreeSet<u64>>),
}

impl<'a> Candidates<'a> {
    fn contains(&self, seq: u64) -> bool {
        match self {
            Self::All => true,
            Self::Sets(sets) => sets.iter().any(|set| set.contains(&seq)),
        }
    }

    /// The candidates' `seq`s within `range`, newest first or oldest first.
    fn seqs<T>(
        &self,
        table: &'a Table<T>,
        range: (Bound<u64>, Bound<u64>),
        newest_first: bool,
    ) -> Box<dyn Iterator<Item = u64> + 'a> {
        fn ordered<'i>(
            iter: impl DoubleEndedIterator<Item = u64> + 'i,
            newest_first: bool,
        ) -> Box<dyn Iterator<Item = u64> + 'i> {
            if newest_first {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            }
        }
        match self {
            Self::All => ordered(table.rows.range(range).map(|(seq, _)| *seq), newest_first),
            Self::Sets(sets) => match sets.as_slice() {
                [] => Box::new(std::iter::empty()),
                [set] => ordered(set.range(range).copied(), newest_first),
                sets => Box::new(Merge {
                    sources: sets
                        .iter()
                        .map(|set| ordered(set.range(range).copied(), newest_first).peekable())
                        .collect(),
                    newest_first,
                }),
            },
        }
    }
}

/// Several ordered streams of `seq`s as one, without repeats.
struct Merge<'a> {
    sources: Vec<Peekable<Box<dyn Iterator<Item = u64> + 'a>>>,
    newest_first: bool,
}

impl Iterator for Merge<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let heads = self
            .sources
            .iter_mut()
            .filter_map(|source| source.peek().copied());
        let next = if self.newest_first {
            heads.max()
        } else {
            heads.min()
        }?;
        for source in &mut self.sources {
            if source.peek() == Some(&next) {
                source.next();
            }
        }
        Some(next)
    }
}

/// Where a list starts and how long it is.
pub struct Page<'a> {
    pub limit: i64,
    pub starting_after: Option<&'a str>,
    pub ending_before: Option<&'a str>,
    pub url: &'a str,
    /// What Stripe calls the objects in "No such …" (for a cursor that is not in the list).
    pub noun: &'a str,
}

/// One page of a list of `table`'s `candidates` that `keep` passes, newest first:
/// `{object: "list", data, has_more, url}`. The same page as sorting all of them and
/// cutting at the cursor would give; a cursor that is not in the list is "No such …".
pub fn list_table<T: Listed + Serialize>(
    table: &Table<T>,
    candidates: &Candidates<'_>,
    keep: impl Fn(&T) -> bool,
    page: &Page<'_>,
) -> Result<Value, ApiError> {
    let limit = usize::try_from(page.limit).unwrap_or(0);
    let cursor = |id: &str, param: &str| {
        table
            .seq_of(id)
            .filter(|seq| candidates.contains(*seq))
            .filter(|seq| table.by_seq(*seq).is_some_and(&keep))
            .ok_or_else(|| ApiError::no_such(page.noun, id, param))
    };
    let take = |range: (Bound<u64>, Bound<u64>), newest_first: bool| -> Vec<&T> {
        candidates
            .seqs(table, range, newest_first)
            .filter_map(|seq| table.by_seq(seq))
            .filter(|row| keep(row))
            .take(limit.saturating_add(1))
            .collect()
    };
    let (data, has_more) = if let Some(before) = page.ending_before {
        let end = cursor(before, "ending_before")?;
        let mut newer = take((Bound::Excluded(end), Bound::Unbounded), false);
        let has_more = newer.len() > limit;
        newer.truncate(limit);
        newer.reverse();
        (newer, has_more)
    } else {
        let start = match page.starting_after {
            Some(after) => Bound::Excluded(cursor(after, "starting_after")?),
            None => Bound::Unbounded,
        };
        let mut older = take((Bound::Unbounded, start), true);
        let has_more = older.len() > limit;
        older.truncate(limit);
        (older, has_more)
    };
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "url": page.url,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Serialize)]
    struct Row {
        id: String,
        #[serde(skip)]
        seq: u64,
        colour: &'static str,
    }

    impl Listed for Row {
        fn id(&self) -> &str {
            &self.id
        }
        fn seq(&self) -> u64 {
            self.seq
        }
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["id"].as_str().unwrap())
            .collect()
    }

    fn page<'a>(limit: i64, after: Option<&'a str>, before: Option<&'a str>) -> Page<'a> {
        Page {
            limit,
            starting_after: after,
            ending_before: before,
            url: "/v1/rows",
            noun: "row",
        }
    }

    #[test]
    fn a_shared_row_is_copied_when_changed_and_the_snapshot_keeps_what_it_saw() {
        let mut table = Table::default();
        let snapshot = table.insert_shared(Row {
            id: "r1".into(),
            seq: 1,
            colour: "red",
        });
        table.get_mut("r1").unwrap().colour = "blue";
        assert_eq!(snapshot.colour, "red");
        assert_eq!(table.get("r1").unwrap().colour, "blue");
        drop(snapshot);
        // No snapshot shares it any more: changed in place.
        let before: *const Row = table.get("r1").unwrap();
        table.get_mut("r1").unwrap().colour = "green";
        assert_eq!(before, table.get("r1").unwrap() as *const Row);
        assert_eq!(table.remove("r1").unwrap().colour, "green");
        assert!(table.get("r1").is_none());
    }

    /// Rows r1..r9; odd ones red, even ones blue, every third also filed as "three".
    fn table() -> (Table<Row>, Index, Index) {
        let mut table = Table::default();
        let mut colours = Index::default();
        let mut threes = Index::default();
        for seq in 1..=9 {
            let colour = if seq % 2 == 1 { "red" } else { "blue" };
            table.insert(Row {
                id: format!("r{seq}"),
                seq,
                colour,
            });
            colours.set(seq, Some(colour));
            threes.set(seq, (seq % 3 == 0).then_some("three"));
        }
        (table, colours, threes)
    }

    #[test]
    fn pages_walk_newest_first_both_ways() {
        let (table, _, _) = table();
        let first = list_table(&table, &Candidates::All, |_| true, &page(3, None, None)).unwrap();
        assert_eq!(ids(&first), ["r9", "r8", "r7"]);
        assert_eq!(first["has_more"], true);
        let next = list_table(
            &table,
            &Candidates::All,
            |_| true,
            &page(3, Some("r7"), None),
        )
        .unwrap();
        assert_eq!(ids(&next), ["r6", "r5", "r4"]);
        let last = list_table(
            &table,
            &Candidates::All,
            |_| true,
            &page(3, Some("r4"), None),
        )
        .unwrap();
        assert_eq!(ids(&last), ["r3", "r2", "r1"]);
        assert_eq!(last["has_more"], false);
        let back = list_table(
            &table,
            &Candidates::All,
            |_| true,
            &page(2, None, Some("r4")),
        )
        .unwrap();
        assert_eq!(ids(&back), ["r6", "r5"]);
        assert_eq!(back["has_more"], true);
        let top = list_table(
            &table,
            &Candidates::All,
            |_| true,
            &page(5, None, Some("r6")),
        )
        .unwrap();
        assert_eq!(ids(&top), ["r9", "r8", "r7"]);
        assert_eq!(top["has_more"], false);
    }

    #[test]
    fn indexes_and_filters_choose_and_cursors_must_be_in_the_list() {
        let (table, colours, threes) = table();
        let red = colours.get("red");
        let reds = list_table(&table, &red, |_| true, &page(10, None, None)).unwrap();
        assert_eq!(ids(&reds), ["r9", "r7", "r5", "r3", "r1"]);
        let red_threes = list_table(
            &table,
            &threes.any(),
            |row| row.colour == "red",
            &page(10, None, None),
        )
        .unwrap();
        assert_eq!(ids(&red_threes), ["r9", "r3"]);
        let both = colours.matching(|key| key == "red" || key == "blue");
        let all = list_table(&table, &both, |_| true, &page(4, Some("r8"), None)).unwrap();
        assert_eq!(ids(&all), ["r7", "r6", "r5", "r4"]);
        let error = list_table(&table, &red, |_| true, &page(3, Some("r2"), None)).unwrap_err();
        assert_eq!(error.status, 404);
        assert_eq!(error.param.as_deref(), Some("starting_after"));
        let nothing = list_table(
            &table,
            &colours.get("green"),
            |_| true,
            &page(3, None, None),
        )
        .unwrap();
        assert!(ids(&nothing).is_empty());
    }

    #[test]
    fn an_index_moves_objects_between_keys() {
        let mut index = Index::default();
        index.set(1, Some("a"));
        index.set(2, Some("a"));
        index.set(1, Some("b"));
        index.set(2, None);
        let Candidates::Sets(a) = index.get("a") else {
            unreachable!()
        };
        assert!(a.is_empty());
        let Candidates::Sets(b) = index.get("b") else {
            unreachable!()
        };
        assert_eq!(b[0].iter().copied().collect::<Vec<_>>(), [1]);
        let Candidates::Sets(any) = index.any() else {
            unreachable!()
        };
        assert_eq!(any[0].len(), 1);
    }
}
