//! `policy.yaml` as a tree of YAML nodes, each with its place, and the
//! reading of the file format's mappings out of it. `test`'s cases file
//! (`cli/cases.rs`) is read with the same machinery, through
//! [`read_yaml`](super::read_yaml), so its mistakes are reported alike.
//!
//! The text is parsed once, by serde-saphyr, into [`Node`]s that accept
//! anything (`deserialize_any`), so the only errors at this step are YAML
//! ones (an unclosed bracket, bad indentation): after those nothing can be
//! read. Everything the schema says — which keys exist, which value has
//! which type, no key twice — is checked afterwards, by [`Fields`], one
//! mapping at a time, and every such mistake is recorded instead of ending
//! the parse. So an unknown key on one route does not hide a bad glob on
//! the next (`file.rs` decides what is skipped after a mistake).
//!
//! Anchors, aliases and merge keys are resolved by serde-saphyr; a value
//! reached through an alias keeps the place where it is referenced.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Location, Options, Spanned};

use super::compile::Errors;

/// One YAML node as written; scalars keep serde-saphyr's reading of them
/// (`1` an integer, `yes` a boolean), and their text is read back from the
/// source when a string is wanted.
#[derive(Debug)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    /// In file order, repeated keys included (they are reported by [`Fields`]).
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

/// Parses YAML text into a tree. Repeated keys are passed through, so that
/// they are reported with the file's other mistakes.
pub(super) fn parse(text: &str) -> Result<Spanned<Node>, serde_saphyr::Error> {
    let options: Options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
    };
    serde_saphyr::from_str_with_options(text, options)
}

/// The source text and the error list, which every read needs.
pub(crate) struct Reader<'t, 'e, 'f> {
    pub text: &'t str,
    pub errors: &'e mut Errors<'f>,
}

impl Reader<'_, '_, '_> {
    /// A scalar's text as written (for a plain `123` or `yes` read where a
    /// string is wanted), from the place it is defined.
    fn source(&self, node: &Spanned<Node>) -> Option<String> {
        let span = node.defined.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        self.text.get(start..start + len).map(str::to_owned)
    }

    /// A scalar as a string, or `None` for a list or a mapping.
    fn scalar(&self, node: &Spanned<Node>) -> Option<String> {
        match &node.value {
            Node::Str(s) => Some(s.clone()),
            Node::Seq(_) | Node::Map(_) => None,
            Node::Null | Node::Bool(_) | Node::Int(_) | Node::Float(_) => {
                Some(self.source(node).unwrap_or_default())
            }
        }
    }

    /// What a wrong value is, for a message: its text, or its kind.
    pub(crate) fn describe(&self, node: &Spanned<Node>) -> String {
        match &node.value {
            Node::Seq(_) => "a list".to_owned(),
            Node::Map(_) => "a mapping".to_owned(),
            _ => format!("`{}`", self.scalar(node).unwrap_or_default()),
        }
    }

    /// The entries of a mapping, ready to be read key by key; `None` (and an
    /// error) when `node` is something else. A null node is an empty mapping.
    pub(crate) fn mapping<'n>(&mut self, node: &'n Spanned<Node>) -> Option<Fields<'n>> {
        let entries = match &node.value {
            Node::Map(entries) => entries.as_slice(),
            Node::Null => &[],
            _ => {
                self.errors
                    .at(node.referenced, "expected mapping start".to_owned());
                return None;
            }
        };
        let mut fields = Fields {
            place: node.referenced,
            entries: Vec::new(),
            known: Vec::new(),
            unreadable: Vec::new(),
        };
        for (key, value) in entries {
            let Some(name) = self.scalar(key) else {
                self.errors
                    .at(key.referenced, "expected string scalar".to_owned());
                // A list or a mapping as a key: the mapping is not what was meant.
                fields.unreadable.push("");
                continue;
            };
            if fields.entries.iter().any(|(seen, _, _)| *seen == name) {
                self.errors.at(
                    key.referenced,
                    format!("duplicate mapping key `{name}` is not allowed here"),
                );
                continue;
            }
            fields.entries.push((name, key.referenced, value));
        }
        Some(fields)
    }

    /// A string value, or `None` when absent, null or not a scalar (reported).
    pub(crate) fn string(
        &mut self,
        fields: &mut Fields<'_>,
        key: &'static str,
    ) -> Option<Spanned<String>> {
        let node = fields.get(key)?;
        match self.scalar(node) {
            Some(value) => Some(Spanned::new(value, node.referenced, node.defined)),
            None => {
                self.errors
                    .at(node.referenced, "expected string scalar".to_owned());
                fields.unreadable.push(key);
                None
            }
        }
    }

    /// A list of strings; each item keeps its own place.
    pub(crate) fn list(
        &mut self,
        fields: &mut Fields<'_>,
        key: &'static str,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        let node = fields.get(key)?;
        let Node::Seq(items) = &node.value else {
            let found = self.describe(node);
            let like = example(key).map_or(String::new(), |e| format!(", like `[{e}]`"));
            self.errors.at(
                node.referenced,
                format!("`{key}` must be a list{like}; found {found}"),
            );
            fields.unreadable.push(key);
            return None;
        };
        let mut list = Vec::new();
        for item in items {
            match self.scalar(item) {
                Some(value) => list.push(Spanned::new(value, item.referenced, item.defined)),
                None => {
                    let found = self.describe(item);
                    self.errors.at(
                        item.referenced,
                        format!("an item of `{key}` must be a string; found {found}"),
                    );
                    fields.unreadable.push(key);
                }
            }
        }
        Some(Spanned::new(list, node.referenced, node.defined))
    }

    /// A whole number from 0 up.
    pub(crate) fn number(
        &mut self,
        fields: &mut Fields<'_>,
        key: &'static str,
    ) -> Option<Spanned<u64>> {
        let node = fields.get(key)?;
        match &node.value {
            Node::Int(n) if u64::try_from(*n).is_ok() => {
                let n = u64::try_from(*n).unwrap_or_default();
                Some(Spanned::new(n, node.referenced, node.defined))
            }
            _ => {
                let found = self.describe(node);
                self.errors.at(
                    node.referenced,
                    format!("`{key}` must be a whole number; found {found}"),
                );
                fields.unreadable.push(key);
                None
            }
        }
    }

    /// `true` or `false`.
    pub(crate) fn boolean(
        &mut self,
        fields: &mut Fields<'_>,
        key: &'static str,
    ) -> Option<Spanned<bool>> {
        let node = fields.get(key)?;
        match &node.value {
            Node::Bool(b) => Some(Spanned::new(*b, node.referenced, node.defined)),
            _ => {
                let found = self.describe(node);
                self.errors.at(
                    node.referenced,
                    format!("`{key}` must be `true` or `false`; found {found}"),
                );
                fields.unreadable.push(key);
                None
            }
        }
    }

    /// Any node as JSON (a token's claims in `test`'s cases): keys must be
    /// strings (as in [`Reader::mapping`]) and numbers fit JSON's; `None`
    /// when some part does not (every such part is reported).
    pub(crate) fn json(&mut self, node: &Spanned<Node>) -> Option<serde_json::Value> {
        use serde_json::Value;
        match &node.value {
            Node::Null => Some(Value::Null),
            Node::Bool(b) => Some(Value::Bool(*b)),
            Node::Str(s) => Some(Value::String(s.clone())),
            Node::Int(n) => {
                let number = i64::try_from(*n)
                    .map(Value::from)
                    .or_else(|_| u64::try_from(*n).map(Value::from));
                if number.is_err() {
                    let found = self.describe(node);
                    self.errors.at(
                        node.referenced,
                        format!("the number {found} is out of range"),
                    );
                }
                number.ok()
            }
            Node::Float(f) => {
                let number = serde_json::Number::from_f64(*f).map(Value::Number);
                if number.is_none() {
                    let found = self.describe(node);
                    self.errors
                        .at(node.referenced, format!("{found} has no JSON form"));
                }
                number
            }
            Node::Seq(items) => {
                // Every item is read, so that each bad one is reported.
                let items: Vec<_> = items.iter().map(|item| self.json(item)).collect();
                items
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            }
            Node::Map(_) => {
                let fields = self.mapping(node)?;
                let mut object = serde_json::Map::new();
                let mut whole = !fields.is_broken();
                for (name, _, value) in fields.all() {
                    match self.json(value) {
                        Some(value) => {
                            object.insert(name.to_owned(), value);
                        }
                        None => whole = false,
                    }
                }
                whole.then_some(Value::Object(object))
            }
        }
    }

    /// Reports every key that was not asked for, at the key, naming the ones
    /// that were in the order they were asked (the file format's order).
    pub(crate) fn finish(&mut self, fields: &Fields<'_>) {
        for (name, place, _) in &fields.entries {
            if !fields.known.contains(&name.as_str()) {
                self.errors.at(
                    *place,
                    format!(
                        "unknown field `{name}`, expected one of {}",
                        fields.known.join(", ")
                    ),
                );
            }
        }
    }
}

/// An example value for a list-valued key, for the message of a scalar
/// written where a list is needed.
fn example(key: &str) -> Option<&'static str> {
    match key {
        "methods" => Some("GET, POST"),
        "paths" => Some("/a, /b/**"),
        "callers" => Some("user"),
        "auth_context" => Some("c1"),
        _ => None,
    }
}

/// The entries of one mapping, read key by key.
pub(crate) struct Fields<'n> {
    /// Where the mapping starts.
    pub place: Location,
    /// Key, the key's place, value; each key once (repeats are reported).
    entries: Vec<(String, Location, &'n Spanned<Node>)>,
    /// The keys asked for so far: the mapping's schema.
    known: Vec<&'static str>,
    /// Keys whose values had the wrong type (reported): the caller decides
    /// whether the rest of the mapping still means anything.
    pub unreadable: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, `None` when it is absent or null (`key:` or `key: ~`).
    fn get(&mut self, key: &'static str) -> Option<&'n Spanned<Node>> {
        self.known.push(key);
        let (_, _, value) = self.entries.iter().find(|(name, _, _)| name == key)?;
        match value.value {
            Node::Null => None,
            _ => Some(*value),
        }
    }

    /// Every entry, for a mapping whose keys are names (`upstreams:`).
    pub(crate) fn all(&self) -> impl Iterator<Item = (&str, Location, &'n Spanned<Node>)> {
        self.entries
            .iter()
            .map(|(name, place, value)| (name.as_str(), *place, *value))
    }

    /// The value of `key`, as a node, to be read by the caller.
    pub(crate) fn node(&mut self, key: &'static str) -> Option<&'n Spanned<Node>> {
        self.get(key)
    }

    /// Marks `key` as unreadable (its value was reported as wrong).
    pub(crate) fn mark_unreadable(&mut self, key: &'static str) {
        self.unreadable.push(key);
    }

    /// Whether some value in this mapping had the wrong type.
    pub(crate) fn is_broken(&self) -> bool {
        !self.unreadable.is_empty()
    }
}
