//! `POST /api/graphql`: just enough GraphQL for value streams. Not a GraphQL engine: a small
//! parser, validation against a fixed schema table, and resolvers that build whole objects which
//! are then cut down to the selection.
//!
//! Accepted documents: **one** operation, `query` (or the `{ ... }` shorthand) or `mutation`,
//! optionally named, with variable definitions (`($input: ValueStreamCreateInput!)`, defaults
//! allowed); fields with aliases and arguments (variables or literals: strings, numbers,
//! booleans, null, enums, lists, objects); comments and commas. Fragments, directives,
//! subscriptions and several operations per document are refused with an error naming them.
//! The body is `{"query": "...", "variables": {...}}` (`operationName` ignored).
//!
//! The schema (see [`SCHEMA`]):
//! - `Query.project(fullPath: ID!)`, `Query.group(fullPath: ID!)` → `id fullPath name
//!   valueStreams(id: ID) { nodes { id name stages(id: ID) { id name custom hidden
//!   startEventIdentifier endEventIdentifier startEventLabel { id title color }
//!   endEventLabel { ... } } } } labels(searchTerm: String, includeAncestorGroups: Boolean)
//!   { nodes { id title color } }`; `Query.currentUser { id username name }`.
//! - `Mutation.valueStreamCreate(input:)` and `Mutation.valueStreamUpdate(input:)` →
//!   `{ valueStream { ... } errors clientMutationId }` (see `value_streams.rs`).
//!
//! Answers are HTTP 200: `{"data": ...}`, plus `errors` (with `locations`, and `path` for field
//! errors). A document that fails to parse or validate gets `{"errors": [...]}` only and changes
//! nothing. Authentication is the REST tokens' (no anonymous queries).

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::api::{ApiError, Request};
use super::{value_streams, State};

// ---------------------------------------------------------------------------------------------
// Syntax

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Lit {
    Var(String),
    Str(String),
    Num(String),
    Bool(bool),
    Null,
    Enum(String),
    List(Vec<Lit>),
    Object(Vec<(String, Lit)>),
}

#[derive(Clone, Debug)]
pub(super) struct Field {
    alias: Option<String>,
    pub(super) name: String,
    pub(super) args: Vec<(String, Lit)>,
    selection: Vec<Field>,
    line: usize,
    column: usize,
}

impl Field {
    fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
    fn location(&self) -> Value {
        json!([{ "line": self.line, "column": self.column }])
    }
    pub(super) fn arg(&self, name: &str) -> Option<&Lit> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

struct Document {
    mutation: bool,
    /// Declared variables and their defaults.
    variables: Vec<(String, Option<Lit>)>,
    selection: Vec<Field>,
}

/// A request-level error: the message and where (1-based line and column).
#[derive(Debug)]
struct SyntaxError(String, usize, usize);

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Num(String),
    Str(String),
    End,
}

struct Lexer {
    toks: Vec<(Tok, usize, usize)>,
    i: usize,
}

fn lex(src: &str) -> Result<Lexer, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    let mut toks = Vec::new();
    while i < chars.len() {
        let (c, col) = (chars[i], i - line_start + 1);
        match c {
            '\n' => {
                line += 1;
                line_start = i + 1;
                i += 1;
            }
            _ if c.is_whitespace() || c == ',' || c == '\u{feff}' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ':' | '$' | '!' | '=' | '@' | '|' | '&' => {
                toks.push((Tok::Punct(c), line, col));
                i += 1;
            }
            '.' if chars.get(i..i + 3) == Some(&['.', '.', '.']) => {
                toks.push((Tok::Spread, line, col));
                i += 3;
            }
            '"' => {
                let (text, end) = lex_string(&chars, i).map_err(|m| SyntaxError(m, line, col))?;
                toks.push((Tok::Str(text), line, col));
                i = end;
            }
            _ if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || ".+-".contains(chars[i]))
                {
                    i += 1;
                }
                toks.push((Tok::Num(chars[start..i].iter().collect()), line, col));
            }
            _ if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                toks.push((Tok::Name(chars[start..i].iter().collect()), line, col));
            }
            _ => {
                return Err(SyntaxError(
                    format!("Parse error on \"{c}\" (error)"),
                    line,
                    col,
                ))
            }
        }
    }
    toks.push((Tok::End, line, i - line_start + 1));
    Ok(Lexer { toks, i: 0 })
}

/// A `"..."` string with GraphQL's escapes; block strings are not supported.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), String> {
    if chars.get(start..start + 3) == Some(&['"', '"', '"']) {
        return Err("Block strings are not supported by this fake GitLab".into());
    }
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let esc = chars.get(i + 1).copied().unwrap_or('\\');
                if esc == 'u' {
                    let hex: String = chars.get(i + 2..i + 6).unwrap_or(&[]).iter().collect();
                    let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    out.push(code.ok_or("Bad unicode escape")?);
                    i += 6;
                    continue;
                }
                out.push(match esc {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    other => other,
                });
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("Unterminated string".into())
}

impl Lexer {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }
    fn pos(&self) -> (usize, usize) {
        let t = &self.toks[self.i.min(self.toks.len() - 1)];
        (t.1, t.2)
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if t != Tok::End {
            self.i += 1;
        }
        t
    }
    fn fail<T>(&self, what: &str) -> Result<T, SyntaxError> {
        let (line, col) = self.pos();
        let got = match self.peek() {
            Tok::End => "end of file".to_owned(),
            Tok::Punct(c) => format!("\"{c}\""),
            Tok::Spread => "\"...\"".to_owned(),
            Tok::Name(n) | Tok::Num(n) | Tok::Str(n) => format!("\"{n}\""),
        };
        Err(SyntaxError(
            format!("Parse error on {got} ({what})"),
            line,
            col,
        ))
    }
    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        if *self.peek() == Tok::Punct(c) {
            self.i += 1;
            Ok(())
        } else {
            self.fail(&format!("expected '{c}'"))
        }
    }
    fn name(&mut self) -> Result<String, SyntaxError> {
        match self.peek().clone() {
            Tok::Name(n) => {
                self.i += 1;
                Ok(n)
            }
            _ => self.fail("expected a name"),
        }
    }
    fn unsupported<T>(&self, what: &str) -> Result<T, SyntaxError> {
        let (line, col) = self.pos();
        Err(SyntaxError(
            format!("{what} are not supported by this fake GitLab"),
            line,
            col,
        ))
    }
}

fn parse(src: &str) -> Result<Document, SyntaxError> {
    let mut lx = lex(src)?;
    let mut doc = Document {
        mutation: false,
        variables: Vec::new(),
        selection: Vec::new(),
    };
    if let Tok::Name(kind) = lx.peek().clone() {
        match kind.as_str() {
            "query" => {}
            "mutation" => doc.mutation = true,
            "fragment" => return lx.unsupported("Fragments"),
            "subscription" => return lx.unsupported("Subscriptions"),
            _ => return lx.fail("expected an operation"),
        }
        lx.next();
        if matches!(lx.peek(), Tok::Name(_)) {
            lx.next();
        }
        if *lx.peek() == Tok::Punct('(') {
            doc.variables = variable_definitions(&mut lx)?;
        }
    }
    if *lx.peek() == Tok::Punct('@') {
        return lx.unsupported("Directives");
    }
    doc.selection = selection_set(&mut lx)?;
    match lx.peek() {
        Tok::End => Ok(doc),
        Tok::Name(n) if n == "fragment" => lx.unsupported("Fragments"),
        _ => lx.unsupported("Several operations in one document"),
    }
}

fn variable_definitions(lx: &mut Lexer) -> Result<Vec<(String, Option<Lit>)>, SyntaxError> {
    lx.expect('(')?;
    let mut vars = Vec::new();
    while *lx.peek() != Tok::Punct(')') {
        lx.expect('$')?;
        let name = lx.name()?;
        lx.expect(':')?;
        type_ref(lx)?;
        let default = if *lx.peek() == Tok::Punct('=') {
            lx.next();
            Some(value(lx)?)
        } else {
            None
        };
        vars.push((name, default));
    }
    lx.expect(')')?;
    Ok(vars)
}

/// `Name`, `[Type]`, each optionally `!`. Types are not checked against the variables.
fn type_ref(lx: &mut Lexer) -> Result<(), SyntaxError> {
    if *lx.peek() == Tok::Punct('[') {
        lx.next();
        type_ref(lx)?;
        lx.expect(']')?;
    } else {
        lx.name()?;
    }
    if *lx.peek() == Tok::Punct('!') {
        lx.next();
    }
    Ok(())
}

fn selection_set(lx: &mut Lexer) -> Result<Vec<Field>, SyntaxError> {
    lx.expect('{')?;
    let mut fields = Vec::new();
    while *lx.peek() != Tok::Punct('}') {
        if *lx.peek() == Tok::Spread {
            return lx.unsupported("Fragments");
        }
        fields.push(field(lx)?);
    }
    lx.expect('}')?;
    if fields.is_empty() {
        return lx.fail("expected a field");
    }
    Ok(fields)
}

fn field(lx: &mut Lexer) -> Result<Field, SyntaxError> {
    let (line, column) = lx.pos();
    let mut name = lx.name()?;
    let mut alias = None;
    if *lx.peek() == Tok::Punct(':') {
        lx.next();
        alias = Some(std::mem::replace(&mut name, lx.name()?));
    }
    let mut args = Vec::new();
    if *lx.peek() == Tok::Punct('(') {
        lx.next();
        while *lx.peek() != Tok::Punct(')') {
            let arg = lx.name()?;
            lx.expect(':')?;
            args.push((arg, value(lx)?));
        }
        lx.expect(')')?;
    }
    if *lx.peek() == Tok::Punct('@') {
        return lx.unsupported("Directives");
    }
    let selection = if *lx.peek() == Tok::Punct('{') {
        selection_set(lx)?
    } else {
        Vec::new()
    };
    Ok(Field {
        alias,
        name,
        args,
        selection,
        line,
        column,
    })
}

fn value(lx: &mut Lexer) -> Result<Lit, SyntaxError> {
    match lx.next() {
        Tok::Punct('$') => Ok(Lit::Var(lx.name()?)),
        Tok::Str(s) => Ok(Lit::Str(s)),
        Tok::Num(n) => Ok(Lit::Num(n)),
        Tok::Name(n) => Ok(match n.as_str() {
            "true" => Lit::Bool(true),
            "false" => Lit::Bool(false),
            "null" => Lit::Null,
            _ => Lit::Enum(n),
        }),
        Tok::Punct('[') => {
            let mut items = Vec::new();
            while *lx.peek() != Tok::Punct(']') {
                items.push(value(lx)?);
            }
            lx.next();
            Ok(Lit::List(items))
        }
        Tok::Punct('{') => {
            let mut fields = Vec::new();
            while *lx.peek() != Tok::Punct('}') {
                let k = lx.name()?;
                lx.expect(':')?;
                fields.push((k, value(lx)?));
            }
            lx.next();
            Ok(Lit::Object(fields))
        }
        _ => {
            lx.i = lx.i.saturating_sub(1);
            lx.fail("expected a value")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schema and validation

/// (type, field, result type, arguments as (name, required)). `__typename` is on every type.
/// A field's arguments: (name, required).
type Args = &'static [(&'static str, bool)];

const SCHEMA: &[(&str, &str, &str, Args)] = &[
    ("Query", "project", "Project", &[("fullPath", true)]),
    ("Query", "group", "Group", &[("fullPath", true)]),
    ("Query", "currentUser", "UserCore", &[]),
    (
        "Mutation",
        "valueStreamCreate",
        "ValueStreamCreatePayload",
        &[("input", true)],
    ),
    (
        "Mutation",
        "valueStreamUpdate",
        "ValueStreamUpdatePayload",
        &[("input", true)],
    ),
    ("Project", "id", "ID", &[]),
    ("Project", "fullPath", "ID", &[]),
    ("Project", "name", "String", &[]),
    (
        "Project",
        "valueStreams",
        "ValueStreamConnection",
        &[("id", false)],
    ),
    ("Project", "labels", "LabelConnection", LABEL_ARGS),
    ("Group", "id", "ID", &[]),
    ("Group", "fullPath", "ID", &[]),
    ("Group", "name", "String", &[]),
    (
        "Group",
        "valueStreams",
        "ValueStreamConnection",
        &[("id", false)],
    ),
    ("Group", "labels", "LabelConnection", LABEL_ARGS),
    ("UserCore", "id", "ID", &[]),
    ("UserCore", "username", "String", &[]),
    ("UserCore", "name", "String", &[]),
    ("ValueStreamConnection", "nodes", "ValueStream", &[]),
    ("ValueStream", "id", "ID", &[]),
    ("ValueStream", "name", "String", &[]),
    (
        "ValueStream",
        "stages",
        "ValueStreamStage",
        &[("id", false)],
    ),
    ("ValueStreamStage", "id", "ID", &[]),
    ("ValueStreamStage", "name", "String", &[]),
    ("ValueStreamStage", "custom", "Boolean", &[]),
    ("ValueStreamStage", "hidden", "Boolean", &[]),
    (
        "ValueStreamStage",
        "startEventIdentifier",
        "ValueStreamStageEvent",
        &[],
    ),
    (
        "ValueStreamStage",
        "endEventIdentifier",
        "ValueStreamStageEvent",
        &[],
    ),
    ("ValueStreamStage", "startEventLabel", "Label", &[]),
    ("ValueStreamStage", "endEventLabel", "Label", &[]),
    ("LabelConnection", "nodes", "Label", &[]),
    ("Label", "id", "ID", &[]),
    ("Label", "title", "String", &[]),
    ("Label", "color", "String", &[]),
    ("Label", "description", "String", &[]),
    (
        "ValueStreamCreatePayload",
        "valueStream",
        "ValueStream",
        &[],
    ),
    ("ValueStreamCreatePayload", "errors", "String", &[]),
    (
        "ValueStreamCreatePayload",
        "clientMutationId",
        "String",
        &[],
    ),
    (
        "ValueStreamUpdatePayload",
        "valueStream",
        "ValueStream",
        &[],
    ),
    ("ValueStreamUpdatePayload", "errors", "String", &[]),
    (
        "ValueStreamUpdatePayload",
        "clientMutationId",
        "String",
        &[],
    ),
];

const LABEL_ARGS: &[(&str, bool)] = &[("searchTerm", false), ("includeAncestorGroups", false)];
const SCALARS: [&str; 5] = ["ID", "String", "Boolean", "Int", "ValueStreamStageEvent"];

/// One entry of `errors`.
fn error(message: String, field: &Field) -> Value {
    json!({ "message": message, "locations": field.location() })
}

/// Check a selection against [`SCHEMA`], collecting every problem (as GraphQL does).
fn validate(ty: &str, fields: &[Field], out: &mut Vec<Value>) {
    for f in fields {
        if f.name == "__typename" {
            continue;
        }
        let Some((_, _, result, args)) = SCHEMA.iter().find(|s| s.0 == ty && s.1 == f.name) else {
            out.push(error(
                format!("Field '{}' doesn't exist on type '{ty}'", f.name),
                f,
            ));
            continue;
        };
        for (arg, _) in &f.args {
            if !args.iter().any(|(a, _)| a == arg) {
                let msg = format!("Field '{}' doesn't accept argument '{arg}'", f.name);
                out.push(error(msg, f));
            }
        }
        let missing: Vec<&str> = args
            .iter()
            .filter(|(a, required)| *required && f.arg(a).is_none())
            .map(|(a, _)| *a)
            .collect();
        if !missing.is_empty() {
            let msg = format!(
                "Field '{}' is missing required arguments: {}",
                f.name,
                missing.join(", ")
            );
            out.push(error(msg, f));
        }
        let scalar = SCALARS.contains(result);
        if scalar && !f.selection.is_empty() {
            let names: Vec<&str> = f.selection.iter().map(|s| s.name.as_str()).collect();
            let msg = format!(
                "Selections can't be made on scalars (field '{}' returns {result} but has \
                 selections [{}])",
                f.name,
                names.join(", ")
            );
            out.push(error(msg, f));
        } else if !scalar && f.selection.is_empty() {
            let msg = format!(
                "Field must have selections (field '{}' returns {result} but has no \
                 selections. Did you mean '{} {{ ... }}'?)",
                f.name, f.name
            );
            out.push(error(msg, f));
        } else if !scalar {
            validate(result, &f.selection, out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Execution

/// The variables of a request, with declared defaults; undeclared uses are errors.
pub(super) struct Vars {
    values: Map<String, Value>,
}

impl Vars {
    /// A literal as JSON, variables substituted; `Err` names an undeclared variable.
    pub(super) fn resolve(&self, lit: &Lit) -> Result<Value, String> {
        Ok(match lit {
            Lit::Var(v) => self.values.get(v).cloned().ok_or_else(|| {
                format!("Variable ${v} is used by this operation but not declared")
            })?,
            Lit::Str(s) | Lit::Enum(s) => json!(s),
            Lit::Num(n) => n
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| n.parse::<f64>().map(Value::from))
                .map_err(|_| format!("Parse error on \"{n}\" (number)"))?,
            Lit::Bool(b) => json!(b),
            Lit::Null => Value::Null,
            Lit::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.resolve(i))
                    .collect::<Result<_, _>>()?,
            ),
            Lit::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

/// The declared variables: the value sent, else the default, else null. Variables sent but not
/// declared are not visible to the operation.
fn declared_variables(doc: &Document, sent: Option<&Value>) -> Vars {
    let sent = sent.and_then(Value::as_object);
    let none = Vars { values: Map::new() };
    let values = doc
        .variables
        .iter()
        .map(|(name, default)| {
            let given = sent.and_then(|s| s.get(name)).cloned();
            let fallback = || default.as_ref().and_then(|d| none.resolve(d).ok());
            (name.clone(), given.or_else(fallback).unwrap_or(Value::Null))
        })
        .collect();
    Vars { values }
}

/// Whether a request body holds a mutation (for fault routing), without failing on junk.
pub(super) fn is_mutation(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("query").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|q| q.trim_start().starts_with("mutation"))
}

fn errors_only(errors: Vec<Value>) -> Result<Response, ApiError> {
    Ok(Json(json!({ "errors": errors })).into_response())
}

/// `POST /api/graphql`.
pub(super) fn handle(st: &mut State, user: u64, req: &Request) -> Result<Response, ApiError> {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return errors_only(vec![json!({ "message": "Invalid request body: not JSON" })]);
    };
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return errors_only(vec![json!({ "message": "No query string was present" })]);
    };
    let doc = match parse(query) {
        Ok(d) => d,
        Err(SyntaxError(m, line, column)) => {
            return errors_only(vec![
                json!({ "message": m, "locations": [{ "line": line, "column": column }] }),
            ])
        }
    };
    let mut problems = Vec::new();
    let root = if doc.mutation { "Mutation" } else { "Query" };
    validate(root, &doc.selection, &mut problems);
    if !problems.is_empty() {
        return errors_only(problems);
    }
    let vars = declared_variables(&doc, body.get("variables"));
    let mut data = Map::new();
    let mut errors = Vec::new();
    for f in &doc.selection {
        if f.name == "__typename" {
            data.insert(f.key().to_owned(), json!(root));
            continue;
        }
        let resolved = value_streams::resolve_root(st, user, f, &vars);
        match resolved {
            Ok(v) => {
                data.insert(f.key().to_owned(), cut(&v, &f.selection, &vars));
            }
            Err(message) => {
                data.insert(f.key().to_owned(), Value::Null);
                let mut e = error(message, f);
                e["path"] = json!([f.key()]);
                errors.push(e);
            }
        }
    }
    let mut out = json!({ "data": data });
    if !errors.is_empty() {
        out["errors"] = Value::Array(errors);
    }
    Ok(Json(out).into_response())
}

/// Cut a resolved value down to a (validated) selection, applying the argument filters.
fn cut(v: &Value, selection: &[Field], vars: &Vars) -> Value {
    match v {
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| cut(i, selection, vars)).collect())
        }
        Value::Object(obj) if !selection.is_empty() => {
            let mut out = Map::new();
            for f in selection {
                let raw = obj.get(&f.name).cloned().unwrap_or(Value::Null);
                let filtered = value_streams::filter_by_args(f, raw, vars);
                out.insert(f.key().to_owned(), cut(&filtered, &f.selection, vars));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operations_variables_aliases_and_literals() {
        let doc = parse(
            "mutation Create($input: ValueStreamCreateInput! = {name: \"x\"}) {\n  \
             made: valueStreamCreate(input: $input) { valueStream { id } errors }\n}",
        )
        .expect("parses");
        assert!(doc.mutation);
        assert_eq!(doc.variables.len(), 1);
        let f = &doc.selection[0];
        assert_eq!((f.key(), f.name.as_str()), ("made", "valueStreamCreate"));
        assert_eq!(f.arg("input"), Some(&Lit::Var("input".into())));
        assert_eq!((f.line, f.column), (2, 3));

        let doc = parse(
            "{ project(fullPath: \"a/b\") { valueStreams { nodes { stages { \
             startEventIdentifier } } } } } # comment",
        )
        .expect("shorthand query");
        assert!(!doc.mutation);
        let lit = parse("{ a(x: [1, -2.5, true, null, ENUM, {k: \"v\\n\\u0041\"}]) { b } }")
            .expect("literals")
            .selection[0]
            .args[0]
            .1
            .clone();
        let vars = Vars { values: Map::new() };
        assert_eq!(
            vars.resolve(&lit),
            Ok(json!([1, -2.5, true, null, "ENUM", {"k": "v\nA"}]))
        );
    }

    #[test]
    fn refuses_what_it_does_not_implement_and_bad_syntax() {
        let err = |q: &str| parse(q).err().map(|e| e.0).unwrap_or_default();
        assert!(err("query { ...F } fragment F on Query { a }").contains("Fragments"));
        assert!(err("{ a @include(if: true) }").contains("Directives"));
        assert!(err("{ a } { b }").contains("Several operations"));
        assert!(err("subscription { a }").contains("Subscriptions"));
        assert!(err("{ a(x: ) }").contains("Parse error"));
        assert!(err("{ a(x: \"open) }").contains("Unterminated"));
        assert!(err("{ }").contains("expected a field"));
    }

    #[test]
    fn validation_names_unknown_fields_arguments_and_selections() {
        let doc = parse(
            "{ project(fullPath: \"a\", nope: 1) { name { x } valueStreams bogus } group { id } }",
        )
        .expect("parses");
        let mut out = Vec::new();
        validate("Query", &doc.selection, &mut out);
        let messages: Vec<String> = out
            .iter()
            .map(|e| e["message"].as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(messages.len(), 5, "{messages:?}");
        assert!(messages[0].contains("doesn't accept argument 'nope'"));
        assert!(messages[1].contains("Selections can't be made on scalars"));
        assert!(messages[2].contains("Field must have selections"));
        assert!(messages[3].contains("Field 'bogus' doesn't exist on type 'Project'"));
        assert!(messages[4].contains("missing required arguments: fullPath"));
    }
}
