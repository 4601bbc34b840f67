//! The parsed form of an expression: a tree evaluated per record.

use regex::Regex;
use serde_json::Value;

/// One node of the tree.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// A constant (literals and constant sub-expressions folded at parse time).
    Literal(Value),
    /// A read from the record: a root, then fields and indexes.
    Path { root: Root, steps: Vec<Step> },
    /// Fields and indexes of a computed value (`lower(x).y`, `(a)[0].b`), flat like
    /// paths.
    Access(Box<Node>, Vec<Step>),
    /// `[a, b, …]` with non-constant elements.
    Array(Vec<Node>),
    /// Unary `-`.
    Neg(Box<Node>),
    /// `!` / `not`.
    Not(Box<Node>),
    /// `a && b && …`, short-circuit.
    And(Vec<Node>),
    /// `a || b || …`, short-circuit.
    Or(Vec<Node>),
    /// A left-to-right chain of one precedence level (`a + b - c`), flat so a long chain
    /// does not deepen the tree.
    Arith {
        first: Box<Node>,
        rest: Vec<(ArithOp, Node)>,
    },
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    Compare(CmpOp, Box<Node>, Box<Node>),
    /// `=~` / `!~` against a regex compiled at parse time.
    Match {
        subject: Box<Node>,
        regex: Box<Regex>,
        negate: bool,
    },
    /// `in` / `not in`.
    In {
        needle: Box<Node>,
        haystack: Box<Node>,
        negate: bool,
    },
    /// A function call (arity checked at parse time).
    Call(Func, Vec<Node>),
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    /// The JSON value (a bare field, or `value`).
    Value,
    /// The record key as a string.
    Key,
    /// The Kafka timestamp (ms).
    Timestamp,
    /// The event time (ms).
    EventTime,
    /// The headers: `headers.name`, `headers["x-y"]`.
    Headers,
}

/// One step of a path.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// `.name` or `["name"]`.
    Field(String),
    /// `[3]`; negative counts from the end.
    Index(i64),
    /// `[expr]`: a string is a field, an integer an index.
    Dynamic(Box<Node>),
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// The built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Exists,
    Len,
    Lower,
    Upper,
    Trim,
    Concat,
    Substr,
    StartsWith,
    EndsWith,
    Contains,
    Replace,
    Abs,
    Round,
    Floor,
    Ceil,
    Min,
    Max,
    Coalesce,
    ToString,
    ToNumber,
    If,
}

/// No upper bound on the argument count.
const MANY: usize = usize::MAX;

/// Name, function, fewest and most arguments.
pub(super) const FUNCTIONS: &[(&str, Func, usize, usize)] = &[
    ("exists", Func::Exists, 1, 1),
    ("len", Func::Len, 1, 1),
    ("lower", Func::Lower, 1, 1),
    ("upper", Func::Upper, 1, 1),
    ("trim", Func::Trim, 1, 1),
    ("concat", Func::Concat, 1, MANY),
    ("substr", Func::Substr, 2, 3),
    ("starts_with", Func::StartsWith, 2, 2),
    ("ends_with", Func::EndsWith, 2, 2),
    ("contains", Func::Contains, 2, 2),
    ("replace", Func::Replace, 3, 3),
    ("abs", Func::Abs, 1, 1),
    ("round", Func::Round, 1, 2),
    ("floor", Func::Floor, 1, 1),
    ("ceil", Func::Ceil, 1, 1),
    ("min", Func::Min, 1, MANY),
    ("max", Func::Max, 1, MANY),
    ("coalesce", Func::Coalesce, 1, MANY),
    ("to_string", Func::ToString, 1, 1),
    ("to_number", Func::ToNumber, 1, 1),
    ("if", Func::If, 3, 3),
];

impl Func {
    pub(super) fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|(_, f, _, _)| *f == self)
            .map_or("?", |(name, _, _, _)| name)
    }
}

impl Node {
    /// Whether evaluating this node reads the JSON value.
    pub(super) fn reads_value(&self) -> bool {
        match self {
            Node::Literal(_) => false,
            Node::Path { root, steps } => {
                *root == Root::Value || steps.iter().any(Step::reads_value)
            }
            Node::Access(node, steps) => node.reads_value() || steps.iter().any(Step::reads_value),
            Node::Array(nodes) | Node::And(nodes) | Node::Or(nodes) | Node::Call(_, nodes) => {
                nodes.iter().any(Node::reads_value)
            }
            Node::Neg(node) | Node::Not(node) | Node::Match { subject: node, .. } => {
                node.reads_value()
            }
            Node::Arith { first, rest } => {
                first.reads_value() || rest.iter().any(|(_, node)| node.reads_value())
            }
            Node::Compare(_, a, b)
            | Node::In {
                needle: a,
                haystack: b,
                ..
            } => a.reads_value() || b.reads_value(),
        }
    }

    /// Whether every direct child is a constant (so the node can be folded).
    pub(super) fn children_constant(&self) -> bool {
        let c = |node: &Node| matches!(node, Node::Literal(_));
        match self {
            Node::Literal(_) | Node::Path { .. } => false,
            Node::Access(node, steps) => {
                c(node) && !steps.iter().any(|step| matches!(step, Step::Dynamic(_)))
            }
            Node::Array(nodes) | Node::And(nodes) | Node::Or(nodes) | Node::Call(_, nodes) => {
                nodes.iter().all(c)
            }
            Node::Neg(node) | Node::Not(node) | Node::Match { subject: node, .. } => c(node),
            Node::Arith { first, rest } => c(first) && rest.iter().all(|(_, node)| c(node)),
            Node::Compare(_, a, b)
            | Node::In {
                needle: a,
                haystack: b,
                ..
            } => c(a) && c(b),
        }
    }
}

impl Step {
    fn reads_value(&self) -> bool {
        match self {
            Step::Field(_) | Step::Index(_) => false,
            Step::Dynamic(node) => node.reads_value(),
        }
    }
}
