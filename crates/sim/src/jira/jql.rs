//! A small but real JQL parser and evaluator for the fake Jira.
//!
//! It covers the subset a sync tool uses (project, key/id, summary, status, statusCategory,
//! issuetype, labels, created/updated/resolved, ORDER BY) and reproduces the Jira behaviours
//! that break such tools: date literals read in the account's zone at minute precision,
//! unquoted integers read as epoch milliseconds, `!=` never matching empty fields, and
//! Jira-worded 400 errors for syntax mistakes, unknown fields and unknown values.

mod plan;

use std::cmp::Ordering;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::fields::IssuePlan;

/// A rejected query; the text is the complete Jira `errorMessages` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JqlError(pub String);

fn syntax<T>(msg: String) -> Result<T, JqlError> {
    Err(JqlError(format!("Error in the JQL Query: {msg}")))
}

/// Jira allows at most this many ORDER BY fields.
const MAX_ORDER_FIELDS: usize = 7;

const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc",
];

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// An unquoted word: field names, keywords, bare values, numbers.
    Word,
    /// A quoted string (either quote style).
    Str,
    LParen,
    RParen,
    Comma,
    Op,
    Eof,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    text: String,
    /// 1-based character position, as Jira reports it.
    pos: usize,
}

impl Token {
    fn is_kw(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }
    fn describe(&self) -> String {
        match self.kind {
            Kind::Eof => "the end of the query".to_string(),
            _ => format!("'{}'", self.text),
        }
    }
}

/// Characters that end a bare word.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || "()=,!<>~\"'&|".contains(c)
}

fn lex(input: &str) -> Result<Vec<Token>, JqlError> {
    let chars: Vec<char> = input.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        let next = chars.get(i + 1).copied();
        let tok = |kind, text: &str| Token {
            kind,
            text: text.to_string(),
            pos,
        };
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' | ')' | ',' => {
                let kind = match c {
                    '(' => Kind::LParen,
                    ')' => Kind::RParen,
                    _ => Kind::Comma,
                };
                toks.push(tok(kind, &c.to_string()));
                i += 1;
            }
            '=' | '~' => {
                toks.push(tok(Kind::Op, &c.to_string()));
                i += 1;
            }
            '!' | '<' | '>' if next == Some('=') || (c == '!' && next == Some('~')) => {
                let text: String = [c, chars[i + 1]].iter().collect();
                toks.push(tok(Kind::Op, &text));
                i += 2;
            }
            '<' | '>' => {
                toks.push(tok(Kind::Op, &c.to_string()));
                i += 1;
            }
            // Jira's symbolic spellings of the logical keywords.
            '!' => {
                toks.push(tok(Kind::Word, "NOT"));
                i += 1;
            }
            '&' | '|' => {
                toks.push(tok(Kind::Word, if c == '&' { "AND" } else { "OR" }));
                i += if next == Some(c) { 2 } else { 1 };
            }
            '"' | '\'' => {
                let (text, end) = lex_quoted(&chars, i)?;
                toks.push(tok(Kind::Str, &text));
                i = end;
            }
            _ => {
                let start = i;
                while i < chars.len() && !is_delimiter(chars[i]) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                toks.push(tok(Kind::Word, &text));
            }
        }
    }
    toks.push(Token {
        kind: Kind::Eof,
        text: String::new(),
        pos: chars.len() + 1,
    });
    Ok(toks)
}

/// Reads a quoted string starting at `start` (the quote); returns its text and the index after
/// the closing quote.
fn lex_quoted(chars: &[char], start: usize) -> Result<(String, usize), JqlError> {
    let quote = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((text, i + 1)),
            '\\' if i + 1 < chars.len() => {
                text.push(match chars[i + 1] {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    syntax(format!(
        "The quoted string '{text}' has not been completed. (line 1, character {})",
        start + 1
    ))
}

// ---------------------------------------------------------------------------------------------
// Parser (untyped syntax tree)

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    NotLike,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
}

impl Op {
    fn spelling(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "~",
            Op::NotLike => "!~",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::IsEmpty => "is",
            Op::IsNotEmpty => "is not",
        }
    }
}

#[derive(Clone, Debug)]
struct Literal {
    text: String,
    quoted: bool,
}

impl Literal {
    /// Unquoted EMPTY / NULL mean "no value".
    fn is_empty_kw(&self) -> bool {
        !self.quoted
            && (self.text.eq_ignore_ascii_case("empty") || self.text.eq_ignore_ascii_case("null"))
    }
}

#[derive(Clone, Debug)]
struct ClauseAst {
    field: String,
    op: Op,
    values: Vec<Literal>,
}

#[derive(Clone, Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Clause(ClauseAst),
}

#[derive(Clone, Debug)]
struct QueryAst {
    filter: Option<Expr>,
    order: Vec<(String, bool)>,
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends with Eof and we never advance past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }
    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.kind != Kind::Eof {
            self.i += 1;
        }
        t
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn query(&mut self) -> Result<QueryAst, JqlError> {
        let filter = if self.peek().kind == Kind::Eof || self.peek().is_kw("order") {
            None
        } else {
            Some(self.or_expr()?)
        };
        let order = if self.eat_kw("order") {
            self.order_by()?
        } else {
            Vec::new()
        };
        let t = self.peek();
        if t.kind != Kind::Eof {
            return syntax(format!(
                "Expecting either 'OR' or 'AND' but got {}. (line 1, character {})",
                t.describe(),
                t.pos
            ));
        }
        Ok(QueryAst { filter, order })
    }

    fn or_expr(&mut self) -> Result<Expr, JqlError> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, JqlError> {
        let mut left = self.not_expr()?;
        while self.eat_kw("and") {
            left = Expr::And(Box::new(left), Box::new(self.not_expr()?));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, JqlError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        if self.peek().kind == Kind::LParen {
            self.bump();
            let inner = self.or_expr()?;
            let t = self.bump();
            if t.kind != Kind::RParen {
                return syntax(format!(
                    "Expecting ')' but got {}. (line 1, character {})",
                    t.describe(),
                    t.pos
                ));
            }
            return Ok(inner);
        }
        self.clause().map(Expr::Clause)
    }

    fn field_name(&mut self) -> Result<String, JqlError> {
        let t = self.bump();
        let ok = t.kind == Kind::Str
            || (t.kind == Kind::Word && !RESERVED.contains(&t.text.to_ascii_lowercase().as_str()));
        if ok {
            Ok(t.text)
        } else {
            syntax(format!(
                "Expecting a field name but got {}. (line 1, character {})",
                t.describe(),
                t.pos
            ))
        }
    }

    fn clause(&mut self) -> Result<ClauseAst, JqlError> {
        let field = self.field_name()?;
        let op = self.operator()?;
        let values = match op {
            Op::IsEmpty | Op::IsNotEmpty => Vec::new(),
            Op::In | Op::NotIn => self.list()?,
            _ => vec![self.value()?],
        };
        Ok(ClauseAst { field, op, values })
    }

    fn operator(&mut self) -> Result<Op, JqlError> {
        let t = self.bump();
        let op = match (t.kind.clone(), t.text.to_ascii_lowercase().as_str()) {
            (Kind::Op, "=") => Op::Eq,
            (Kind::Op, "!=") => Op::Ne,
            (Kind::Op, ">") => Op::Gt,
            (Kind::Op, ">=") => Op::Ge,
            (Kind::Op, "<") => Op::Lt,
            (Kind::Op, "<=") => Op::Le,
            (Kind::Op, "~") => Op::Like,
            (Kind::Op, "!~") => Op::NotLike,
            (Kind::Word, "in") => Op::In,
            (Kind::Word, "not") if self.eat_kw("in") => Op::NotIn,
            (Kind::Word, "is") => return self.is_operator(),
            _ => {
                return syntax(format!(
                    "Expecting operator but got {}. The valid operators are '=', '!=', '<', '>', \
                     '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. (line 1, character {})",
                    t.describe(),
                    t.pos
                ))
            }
        };
        Ok(op)
    }

    fn is_operator(&mut self) -> Result<Op, JqlError> {
        let negated = self.eat_kw("not");
        if self.eat_kw("empty") || self.eat_kw("null") {
            return Ok(if negated { Op::IsNotEmpty } else { Op::IsEmpty });
        }
        let t = self.peek();
        syntax(format!(
            "Expecting 'EMPTY' or 'NULL' but got {}. (line 1, character {})",
            t.describe(),
            t.pos
        ))
    }

    fn value(&mut self) -> Result<Literal, JqlError> {
        let t = self.bump();
        match t.kind {
            Kind::Str => Ok(Literal {
                text: t.text,
                quoted: true,
            }),
            Kind::Word => {
                let lower = t.text.to_ascii_lowercase();
                if RESERVED.contains(&lower.as_str()) && lower != "empty" && lower != "null" {
                    return syntax(format!(
                        "'{}' is a reserved JQL word. You must surround it in quotation marks to \
                         use it in a query. (line 1, character {})",
                        t.text, t.pos
                    ));
                }
                Ok(Literal {
                    text: t.text,
                    quoted: false,
                })
            }
            _ => syntax(format!(
                "Expecting either a value, list or function but got {}. (line 1, character {})",
                t.describe(),
                t.pos
            )),
        }
    }

    fn list(&mut self) -> Result<Vec<Literal>, JqlError> {
        let t = self.bump();
        if t.kind != Kind::LParen {
            return syntax(format!(
                "Expecting '(' but got {}. (line 1, character {})",
                t.describe(),
                t.pos
            ));
        }
        let mut values = vec![self.value()?];
        loop {
            let t = self.bump();
            match t.kind {
                Kind::Comma => values.push(self.value()?),
                Kind::RParen => return Ok(values),
                _ => {
                    return syntax(format!(
                        "Expecting ',' or ')' but got {}. (line 1, character {})",
                        t.describe(),
                        t.pos
                    ))
                }
            }
        }
    }

    fn order_by(&mut self) -> Result<Vec<(String, bool)>, JqlError> {
        if !self.eat_kw("by") {
            let t = self.peek();
            return syntax(format!(
                "Expecting 'by' but got {}. (line 1, character {})",
                t.describe(),
                t.pos
            ));
        }
        let mut order = Vec::new();
        loop {
            let field = self.field_name()?;
            let desc = if self.eat_kw("desc") {
                true
            } else {
                self.eat_kw("asc");
                false
            };
            order.push((field, desc));
            if self.peek().kind != Kind::Comma {
                break;
            }
            self.bump();
        }
        if order.len() > MAX_ORDER_FIELDS {
            return syntax(format!(
                "The ORDER BY clause may contain at most {MAX_ORDER_FIELDS} fields."
            ));
        }
        Ok(order)
    }
}

// ---------------------------------------------------------------------------------------------
// Compilation: resolve field names and literals against the site's data

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Project,
    Key,
    Summary,
    Status,
    Category,
    IssueType,
    Labels,
    Created,
    Updated,
    Resolved,
    Assignee,
    Component,
    Priority,
    DueDate,
    FixVersion,
    Sprint,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        Some(match name.to_ascii_lowercase().as_str() {
            "project" => Field::Project,
            "key" | "issuekey" | "id" => Field::Key,
            "summary" => Field::Summary,
            "status" => Field::Status,
            "statuscategory" => Field::Category,
            "issuetype" | "type" => Field::IssueType,
            "labels" => Field::Labels,
            "created" | "createddate" => Field::Created,
            "updated" | "updateddate" => Field::Updated,
            "resolved" | "resolutiondate" => Field::Resolved,
            "assignee" => Field::Assignee,
            "component" => Field::Component,
            "priority" => Field::Priority,
            "duedate" | "due" => Field::DueDate,
            "fixversion" => Field::FixVersion,
            "sprint" => Field::Sprint,
            _ => return None,
        })
    }

    /// Issue 17's fields, compiled and evaluated in `jql/plan.rs`.
    fn is_plan(self) -> bool {
        use Field::*;
        matches!(
            self,
            Assignee | Component | Priority | DueDate | FixVersion | Sprint
        )
    }

    fn is_date(self) -> bool {
        matches!(self, Field::Created | Field::Updated | Field::Resolved)
    }

    fn supports(self, op: Op) -> bool {
        use Op::*;
        match self {
            Field::Summary => matches!(op, Like | NotLike | IsEmpty | IsNotEmpty),
            Field::Key => matches!(op, Eq | Ne | In | NotIn | Gt | Ge | Lt | Le),
            Field::Created | Field::Updated | Field::Resolved | Field::DueDate => {
                !matches!(op, Like | NotLike)
            }
            _ => matches!(op, Eq | Ne | In | NotIn | IsEmpty | IsNotEmpty),
        }
    }
}

/// What the compiler needs to know about the site to validate values, as Jira does.
pub trait Catalog {
    /// The key of the project named by `value` (key, id or name), if it exists.
    fn project_key(&self, value: &str) -> Option<String>;
    fn status_exists(&self, name: &str) -> bool;
    fn issue_type_exists(&self, name: &str) -> bool;
    /// Whether `key` names an existing issue (current or former key).
    fn key_exists(&self, key: &str) -> bool;
    /// Whether an issue with this numeric id exists (and the account may see it).
    fn id_exists(&self, id: u64) -> bool;
    /// The person named by an accountId, username, key or e-mail (their internal number).
    fn user_number(&self, _value: &str) -> Option<u64> {
        None
    }
    fn component_exists(&self, _name: &str) -> bool {
        false
    }
    fn priority_exists(&self, _name: &str) -> bool {
        false
    }
    /// Ids of the versions with this name or id.
    fn version_ids(&self, _value: &str) -> Vec<u64> {
        Vec::new()
    }
    /// Ids of the sprints with this name or id.
    fn sprint_ids(&self, _value: &str) -> Vec<u64> {
        Vec::new()
    }
}

/// Everything a query is compiled against.
pub struct Env<'a> {
    pub now: DateTime<Utc>,
    /// The searching account's zone: date literals are local times in it.
    pub offset: FixedOffset,
    pub catalog: &'a dyn Catalog,
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    /// Lower-cased text (Jira compares these fields case-insensitively).
    Text(String),
    /// Minute-truncated instant.
    Time(DateTime<Utc>),
    IssueId(u64),
    IssueKey {
        project: String,
        num: u64,
    },
    /// People, versions or sprints a value names.
    Ids(Vec<u64>),
    /// A calendar day in the account's zone (`duedate`).
    Day(NaiveDate),
    Empty,
}

#[derive(Clone, Debug)]
struct Test {
    field: Field,
    op: Op,
    values: Vec<Val>,
}

#[derive(Clone, Debug)]
enum Pred {
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    Test(Test),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortField {
    Key,
    Id,
    Created,
    Updated,
    Resolved,
    Summary,
    Status,
    Project,
    IssueType,
}

/// A validated query, ready to filter and sort issues.
#[derive(Clone, Debug)]
pub struct Query {
    filter: Option<Pred>,
    order: Vec<(SortField, bool)>,
}

/// The issue data a query is evaluated on.
pub struct Row<'a> {
    pub id: u64,
    pub key: &'a str,
    pub old_keys: &'a [String],
    pub project: &'a str,
    pub summary: &'a str,
    pub status: &'a str,
    pub category: &'a str,
    pub issue_type: &'a str,
    pub labels: &'a [String],
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    pub plan: &'a IssuePlan,
}

/// Parses and validates `jql`.
pub fn compile(jql: &str, env: &Env) -> Result<Query, JqlError> {
    let ast = Parser {
        toks: lex(jql)?,
        i: 0,
    }
    .query()?;
    let filter = ast.filter.map(|e| compile_expr(e, env)).transpose()?;
    let order = ast
        .order
        .iter()
        .map(|(name, desc)| Ok((sort_field(name)?, *desc)))
        .collect::<Result<_, JqlError>>()?;
    Ok(Query { filter, order })
}

fn compile_expr(expr: Expr, env: &Env) -> Result<Pred, JqlError> {
    Ok(match expr {
        Expr::And(a, b) => Pred::And(
            Box::new(compile_expr(*a, env)?),
            Box::new(compile_expr(*b, env)?),
        ),
        Expr::Or(a, b) => Pred::Or(
            Box::new(compile_expr(*a, env)?),
            Box::new(compile_expr(*b, env)?),
        ),
        Expr::Not(a) => Pred::Not(Box::new(compile_expr(*a, env)?)),
        Expr::Clause(c) => Pred::Test(compile_clause(c, env)?),
    })
}

fn compile_clause(c: ClauseAst, env: &Env) -> Result<Test, JqlError> {
    let field = Field::from_name(&c.field).ok_or_else(|| {
        JqlError(format!(
            "Field '{}' does not exist or you do not have permission to view it.",
            c.field
        ))
    })?;
    if !field.supports(c.op) {
        return Err(JqlError(format!(
            "The operator '{}' is not supported by the '{}' field.",
            c.op.spelling(),
            c.field
        )));
    }
    let values: Vec<Val> = c
        .values
        .iter()
        .map(|lit| compile_value(field, &c.field, c.op, lit, env))
        .collect::<Result<_, _>>()?;
    // Like Jira's issue id validator: an id that names no issue (deleted, or not visible to
    // the account) is an error for `=` and `in`, one message per id, rather than no match.
    if field == Field::Key && matches!(c.op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
        let missing: Vec<String> = values
            .iter()
            .filter_map(|v| match v {
                Val::IssueId(id) if !env.catalog.id_exists(*id) => Some(format!(
                    "A value with ID '{id}' does not exist for the field '{}'.",
                    c.field
                )),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            return Err(JqlError(missing.join("\n")));
        }
    }
    Ok(Test {
        field,
        op: c.op,
        values,
    })
}

fn compile_value(
    field: Field,
    name: &str,
    op: Op,
    lit: &Literal,
    env: &Env,
) -> Result<Val, JqlError> {
    if lit.is_empty_kw() && matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
        return Ok(Val::Empty);
    }
    let no_such_value = || {
        JqlError(format!(
            "The value '{}' does not exist for the field '{name}'.",
            lit.text
        ))
    };
    let text = &lit.text;
    if field.is_plan() {
        return plan::compile(field, name, lit, env);
    }
    match field {
        Field::Project => env
            .catalog
            .project_key(text)
            .map(|k| Val::Text(k.to_ascii_lowercase()))
            .ok_or_else(no_such_value),
        Field::Status if env.catalog.status_exists(text) => Ok(Val::Text(text.to_lowercase())),
        Field::IssueType if env.catalog.issue_type_exists(text) => {
            Ok(Val::Text(text.to_lowercase()))
        }
        Field::Status | Field::IssueType => Err(no_such_value()),
        Field::Category => category_key(text)
            .map(|k| Val::Text(k.to_string()))
            .ok_or_else(no_such_value),
        Field::Summary | Field::Labels => Ok(Val::Text(text.to_lowercase())),
        Field::Key => compile_issue_value(name, op, text, env),
        Field::Created | Field::Updated | Field::Resolved => parse_date(lit, env)
            .map(Val::Time)
            .ok_or_else(|| invalid_date(text, name)),
        _ => Err(no_such_value()),
    }
}

fn invalid_date(text: &str, name: &str) -> JqlError {
    JqlError(format!(
        "Date value '{text}' for field '{name}' is invalid. Valid formats include: \
         'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a \
         period format e.g. '-5d', '4w 2d'."
    ))
}

/// `key`/`issuekey`/`id` take either a numeric id or an issue key. Like Jira, equality on a
/// key that names no issue is an error rather than an empty result.
fn compile_issue_value(name: &str, op: Op, text: &str, env: &Env) -> Result<Val, JqlError> {
    if let Ok(id) = text.parse::<u64>() {
        return Ok(Val::IssueId(id));
    }
    let (project, num) = split_key(text).ok_or_else(|| {
        JqlError(format!(
            "The issue key '{text}' for field '{name}' is invalid."
        ))
    })?;
    let equality = matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn);
    if equality && !env.catalog.key_exists(text) {
        return Err(JqlError(format!(
            "An issue with key '{text}' does not exist for field '{name}'."
        )));
    }
    Ok(Val::IssueKey {
        project: project.to_ascii_lowercase(),
        num,
    })
}

/// Splits `ABC-12` into ("ABC", 12).
pub fn split_key(key: &str) -> Option<(&str, u64)> {
    let (project, num) = key.rsplit_once('-')?;
    if project.is_empty() {
        return None;
    }
    Some((project, num.parse().ok()?))
}

/// Status category by key, name or id, normalised to its key.
fn category_key(value: &str) -> Option<&'static str> {
    Some(match value.to_ascii_lowercase().as_str() {
        "new" | "to do" | "2" => "new",
        "indeterminate" | "in progress" | "4" => "indeterminate",
        "done" | "complete" | "3" => "done",
        "undefined" | "no category" | "1" => "undefined",
        _ => return None,
    })
}

fn sort_field(name: &str) -> Result<SortField, JqlError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "key" | "issuekey" => SortField::Key,
        "id" => SortField::Id,
        "created" | "createddate" => SortField::Created,
        "updated" | "updateddate" => SortField::Updated,
        "resolved" | "resolutiondate" => SortField::Resolved,
        "summary" => SortField::Summary,
        "status" => SortField::Status,
        "project" => SortField::Project,
        "issuetype" | "type" => SortField::IssueType,
        "labels" | "statuscategory" => {
            return Err(JqlError(format!(
                "Field '{name}' does not support sorting."
            )))
        }
        _ => return Err(JqlError(format!("Not able to sort using field '{name}'."))),
    })
}

// ---------------------------------------------------------------------------------------------
// Dates

/// Jira stores JQL date bounds at minute precision: drop seconds and below.
pub fn truncate_to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(60) * 60;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// Reads a JQL date value: an unquoted integer is epoch milliseconds, a period like `-2h` is
/// relative to now, anything else is a local time in the account's zone. The result is
/// truncated to its minute, so `updated >= X` can return a little more, never less.
fn parse_date(lit: &Literal, env: &Env) -> Option<DateTime<Utc>> {
    let text = lit.text.trim();
    if !lit.quoted && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let millis: i64 = text.parse().ok()?;
        return DateTime::from_timestamp_millis(millis).map(truncate_to_minute);
    }
    if let Some(delta) = parse_period(text) {
        return env.now.checked_add_signed(delta).map(truncate_to_minute);
    }
    let local = parse_local(text)?;
    let instant = env.offset.from_local_datetime(&local).single()?;
    Some(truncate_to_minute(instant.with_timezone(&Utc)))
}

fn parse_local(text: &str) -> Option<NaiveDateTime> {
    for fmt in ["%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Some(t);
        }
    }
    for fmt in ["%Y/%m/%d", "%Y-%m-%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(text, fmt) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

/// `-15m`, `2h`, `-1w 2d`: an optional sign, then one or more `<n><unit>` parts. Checked
/// arithmetic throughout, so an absurd period is an invalid date rather than a panic.
fn parse_period(text: &str) -> Option<Duration> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut total = Duration::zero();
    let mut any = false;
    for part in rest.split_whitespace() {
        let unit = part.chars().last()?;
        let n: i64 = part[..part.len() - unit.len_utf8()].parse().ok()?;
        let step = match unit.to_ascii_lowercase() {
            'w' => Duration::try_weeks(n),
            'd' => Duration::try_days(n),
            'h' => Duration::try_hours(n),
            'm' => Duration::try_minutes(n),
            _ => None,
        }?;
        total = total.checked_add(&step)?;
        any = true;
    }
    match (any, negative) {
        (false, _) => None,
        (true, true) => Some(-total),
        (true, false) => Some(total),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

impl Query {
    pub fn matches(&self, row: &Row) -> bool {
        self.filter.as_ref().is_none_or(|p| eval(p, row))
    }

    /// Orders by the ORDER BY fields (key order when there are none), ties broken by id.
    pub fn compare(&self, a: &Row, b: &Row) -> Ordering {
        let default = [(SortField::Key, false)];
        let order = if self.order.is_empty() {
            &default[..]
        } else {
            &self.order[..]
        };
        order
            .iter()
            .map(|(f, desc)| {
                let o = compare_by(*f, a, b);
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.id.cmp(&b.id))
    }
}

fn key_order(key: &str) -> (String, u64) {
    match split_key(key) {
        Some((p, n)) => (p.to_string(), n),
        None => (key.to_string(), 0),
    }
}

fn compare_by(f: SortField, a: &Row, b: &Row) -> Ordering {
    // Empty resolution dates sort after every date, as "no value" does in Jira.
    let opt = |x: Option<DateTime<Utc>>| (x.is_none(), x);
    match f {
        SortField::Key => key_order(a.key).cmp(&key_order(b.key)),
        SortField::Id => a.id.cmp(&b.id),
        SortField::Created => a.created.cmp(&b.created),
        SortField::Updated => a.updated.cmp(&b.updated),
        SortField::Resolved => opt(a.resolved).cmp(&opt(b.resolved)),
        SortField::Summary => a.summary.to_lowercase().cmp(&b.summary.to_lowercase()),
        SortField::Status => a.status.cmp(b.status),
        SortField::Project => a.project.cmp(b.project),
        SortField::IssueType => a.issue_type.cmp(b.issue_type),
    }
}

fn eval(p: &Pred, row: &Row) -> bool {
    match p {
        Pred::And(a, b) => eval(a, row) && eval(b, row),
        Pred::Or(a, b) => eval(a, row) || eval(b, row),
        Pred::Not(a) => !eval(a, row),
        Pred::Test(t) => eval_test(t, row),
    }
}

fn eval_test(t: &Test, row: &Row) -> bool {
    let empty = is_empty(t.field, row);
    let any_equal = || t.values.iter().any(|v| equals(t.field, v, row));
    match t.op {
        Op::IsEmpty => empty,
        Op::IsNotEmpty => !empty,
        Op::Eq | Op::In => any_equal(),
        // Jira's negative operators never match an issue whose field is empty: the classic
        // `labels != x` surprise.
        Op::Ne | Op::NotIn => !empty && !any_equal(),
        Op::Like => !empty && t.values.iter().any(|v| contains_words(row.summary, v)),
        Op::NotLike => !empty && !t.values.iter().any(|v| contains_words(row.summary, v)),
        Op::Gt | Op::Ge | Op::Lt | Op::Le => t
            .values
            .first()
            .is_some_and(|v| compare_holds(t.op, t.field, v, row)),
    }
}

fn time_of(field: Field, row: &Row) -> Option<DateTime<Utc>> {
    match field {
        Field::Created => Some(row.created),
        Field::Updated => Some(row.updated),
        Field::Resolved => row.resolved,
        _ => None,
    }
}

fn is_empty(field: Field, row: &Row) -> bool {
    match field {
        Field::Labels => row.labels.is_empty(),
        Field::Summary => row.summary.is_empty(),
        f if f.is_date() => time_of(f, row).is_none(),
        f if f.is_plan() => plan::is_empty(f, row),
        _ => false,
    }
}

fn equals(field: Field, v: &Val, row: &Row) -> bool {
    let text_eq = |s: &str| matches!(v, Val::Text(t) if s.to_lowercase() == *t);
    match (field, v) {
        (_, Val::Empty) => is_empty(field, row),
        (f, v) if f.is_plan() => plan::equals(f, v, row),
        (Field::Project, _) => text_eq(row.project),
        (Field::Status, _) => text_eq(row.status),
        (Field::IssueType, _) => text_eq(row.issue_type),
        (Field::Category, _) => text_eq(row.category),
        (Field::Labels, _) => row.labels.iter().any(|l| text_eq(l)),
        (Field::Summary, _) => text_eq(row.summary),
        (Field::Key, Val::IssueId(id)) => row.id == *id,
        (Field::Key, Val::IssueKey { project, num }) => std::iter::once(row.key)
            .chain(row.old_keys.iter().map(String::as_str))
            .filter_map(split_key)
            .any(|(p, n)| p.eq_ignore_ascii_case(project) && n == *num),
        (f, Val::Time(t)) => time_of(f, row).is_some_and(|x| truncate_to_minute(x) == *t),
        _ => false,
    }
}

fn compare_holds(op: Op, field: Field, v: &Val, row: &Row) -> bool {
    let ord = match (field, v) {
        (Field::Key, Val::IssueId(id)) => Some(row.id.cmp(id)),
        // Key ranges only make sense inside one project, as in Jira.
        (Field::Key, Val::IssueKey { project, num }) => split_key(row.key)
            .filter(|(p, _)| p.eq_ignore_ascii_case(project))
            .map(|(_, n)| n.cmp(num)),
        (f, Val::Time(t)) => time_of(f, row).map(|x| x.cmp(t)),
        (Field::DueDate, Val::Day(d)) => row.plan.due.map(|x| x.cmp(d)),
        _ => None,
    };
    ord.is_some_and(|o| match op {
        Op::Gt => o.is_gt(),
        Op::Ge => o.is_ge(),
        Op::Lt => o.is_lt(),
        Op::Le => o.is_le(),
        _ => false,
    })
}

/// Text search, simplified: every word of the value (trailing `*` wildcard ignored) must
/// occur in the summary, case-insensitively.
fn contains_words(summary: &str, v: &Val) -> bool {
    let Val::Text(needle) = v else { return false };
    let hay = summary.to_lowercase();
    needle
        .split_whitespace()
        .map(|w| w.trim_end_matches('*'))
        .all(|w| hay.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Site;
    impl Catalog for Site {
        fn project_key(&self, v: &str) -> Option<String> {
            ["ABC", "XY"]
                .iter()
                .find(|k| k.eq_ignore_ascii_case(v))
                .map(|k| k.to_string())
        }
        fn status_exists(&self, name: &str) -> bool {
            ["to do", "in progress", "done"].contains(&name.to_lowercase().as_str())
        }
        fn issue_type_exists(&self, name: &str) -> bool {
            name.eq_ignore_ascii_case("task")
        }
        fn key_exists(&self, key: &str) -> bool {
            key.eq_ignore_ascii_case("ABC-1")
        }
        fn id_exists(&self, id: u64) -> bool {
            id < 20_000
        }
    }

    fn env(offset_secs: i32) -> Env<'static> {
        Env {
            now: Utc.with_ymd_and_hms(2025, 2, 15, 12, 0, 30).unwrap(),
            offset: FixedOffset::east_opt(offset_secs).unwrap(),
            catalog: &Site,
        }
    }

    fn err(jql: &str) -> String {
        compile(jql, &env(0)).unwrap_err().0
    }

    fn row(labels: &[String]) -> Row<'_> {
        let t = Utc.with_ymd_and_hms(2025, 2, 15, 9, 45, 42).unwrap();
        Row {
            id: 10001,
            key: "ABC-1",
            old_keys: &[],
            project: "ABC",
            summary: "Fix the Login page",
            status: "To Do",
            category: "new",
            issue_type: "Task",
            labels,
            created: t,
            updated: t,
            resolved: None,
            plan: &NO_PLAN,
        }
    }

    static NO_PLAN: IssuePlan = IssuePlan::NONE;

    fn hit(jql: &str, labels: &[String]) -> bool {
        compile(jql, &env(0)).unwrap().matches(&row(labels))
    }

    #[test]
    fn parses_boolean_structure_and_keywords_case_insensitively() {
        let none: Vec<String> = vec![];
        assert!(hit(
            "project = abc and (status = 'To Do' OR status = Done)",
            &none
        ));
        assert!(hit("not status = Done && summary ~ \"login fix*\"", &none));
        assert!(!hit("project in (XY) or statusCategory = Done", &none));
        assert!(hit(
            "statusCategory = 'To Do' and statusCategory = new",
            &none
        ));
        assert!(hit(
            "key = ABC-1 and id = 10001 and id > 10000 and key <= ABC-1",
            &none
        ));
        assert!(hit("resolved is EMPTY and labels is empty", &none));
        assert!(hit("ORDER BY updated DESC, key", &none));
    }

    #[test]
    fn negative_operators_skip_empty_fields() {
        let none: Vec<String> = vec![];
        let some = vec!["backend".to_string()];
        assert!(!hit("labels != frontend", &none));
        assert!(hit("labels != frontend", &some));
        assert!(hit("labels not in (frontend, ui)", &some));
        assert!(!hit("labels not in (backend)", &some));
        assert!(hit("NOT labels = frontend", &none));
    }

    #[test]
    fn syntax_errors_are_reported_like_jira() {
        assert!(err("project = ").contains("Expecting either a value"));
        assert!(err("project ABC").contains("Expecting operator but got 'ABC'"));
        assert!(err("project = ABC status = Done").contains("Expecting either 'OR' or 'AND'"));
        assert!(err("summary ~ \"abc").contains("has not been completed"));
        assert!(err("status = and").contains("reserved JQL word"));
        assert!(err("(project = ABC").contains("Expecting ')'"));
        assert!(err("status is done").contains("Expecting 'EMPTY' or 'NULL'"));
        assert!(err("order by a,b,c,d,e,f,g,h").contains("at most 7"));
        for e in [err("project = "), err("x y")] {
            assert!(e.starts_with("Error in the JQL Query: "), "{e}");
        }
    }

    #[test]
    fn semantic_errors_name_the_field_or_value() {
        assert_eq!(
            err("foo = bar"),
            "Field 'foo' does not exist or you do not have permission to view it."
        );
        assert_eq!(
            err("project = NOPE"),
            "The value 'NOPE' does not exist for the field 'project'."
        );
        assert!(err("status = Weird").contains("does not exist for the field 'status'"));
        assert!(err("status ~ Done").contains("operator '~' is not supported"));
        assert!(err("key = ABC-99").contains("An issue with key 'ABC-99' does not exist"));
        assert!(err("updated > \"yesterday\"").contains("Date value 'yesterday'"));
        assert!(err("order by labels").contains("does not support sorting"));
    }

    #[test]
    fn dates_epoch_local_relative_and_truncated() {
        let e = env(13 * 3600 + 45 * 60);
        let val = |s: &str, quoted| {
            parse_date(
                &Literal {
                    text: s.into(),
                    quoted,
                },
                &e,
            )
        };
        let utc = |h, m, s| Utc.with_ymd_and_hms(2025, 2, 15, h, m, s).unwrap();
        // 09:45 at +13:45 is 20:00 the day before in UTC.
        let prev = Utc.with_ymd_and_hms(2025, 2, 14, 20, 0, 0).unwrap();
        assert_eq!(val("2025/02/15 09:45", true), Some(prev));
        assert_eq!(val("2025-02-15 09:45", true), Some(prev));
        assert_eq!(
            val("2025-02-15", true),
            Some(Utc.with_ymd_and_hms(2025, 2, 14, 10, 15, 0).unwrap())
        );
        let millis = utc(9, 45, 42).timestamp_millis() + 123;
        assert_eq!(val(&millis.to_string(), false), Some(utc(9, 45, 0)));
        assert_eq!(
            val(&millis.to_string(), true),
            None,
            "quoted numbers are not epochs"
        );
        assert_eq!(val("-15m", true), Some(utc(11, 45, 0)));
        assert_eq!(
            val("-1w 1d", false).map(|t| (e.now - t).num_days()),
            Some(8)
        );
        assert_eq!(val("2025/13/01", true), None);
        assert_eq!(
            val("-99999999999999w", false),
            None,
            "overflow is invalid, not a panic"
        );
        assert_eq!(val("99999999999999999999", false), None);
    }
}
