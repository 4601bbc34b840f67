//! From tokens to a [`Node`] tree by precedence climbing. Binding strength, loosest
//! first: `||`, `&&`, prefix `!`, comparisons (`== != < <= > >= =~ !~ in`), `+ -`,
//! `* / %`, unary `-`, postfix `.name` and `[index]`.
//!
//! Nesting (parentheses, brackets, call arguments, unary operators) is limited to
//! [`MAX_NESTING`] levels and operator chains are flat nodes, so neither parsing nor
//! evaluating a hostile expression can overflow the stack.

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::ExprError;
use super::ast::{ArithOp, CmpOp, FUNCTIONS, Node, Root, Step};
use super::eval;
use super::lexer::{Token, TokenKind, tokenize};

/// Most nested levels (parentheses, brackets, call arguments, unary operators).
pub(super) const MAX_NESTING: usize = 64;

/// Largest compiled regex (bytes), so a pattern cannot take unbounded memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Words that are operators or literals, never field names.
const KEYWORDS: &[&str] = &["and", "or", "not", "in", "true", "false", "null"];

/// Parses a whole expression.
pub(super) fn parse(source: &str) -> Result<Node, ExprError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        source,
        end: Token {
            kind: TokenKind::End,
            offset: source.len(),
            len: 0,
        },
        tokens,
        pos: 0,
        depth: 0,
    };
    if parser.peek().kind == TokenKind::End {
        return Err(error(0, "empty expression"));
    }
    let node = parser.expr(Level::Or)?;
    let next = parser.peek();
    if next.kind != TokenKind::End {
        return Err(error(
            next.offset,
            format!(
                "expected an operator or end of expression, found {}",
                parser.describe(next)
            ),
        ));
    }
    Ok(node)
}

fn error(offset: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        offset,
        message: message.into(),
    }
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<Token>,
    /// Returned past the last token (the lexer always ends with one, but never index).
    end: Token,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&self.end)
    }

    fn peek_second(&self) -> &Token {
        self.tokens.get(self.pos + 1).unwrap_or(&self.end)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    /// How a token reads in a message: its source text in backticks.
    fn describe(&self, token: &Token) -> String {
        if token.kind == TokenKind::End {
            return "end of expression".to_owned();
        }
        let text = self
            .source
            .get(token.offset..token.offset.saturating_add(token.len))
            .unwrap_or("?");
        if text.chars().count() > 32 {
            let short: String = text.chars().take(30).collect();
            format!("`{short}…`")
        } else {
            format!("`{text}`")
        }
    }

    fn expected(&self, what: &str) -> ExprError {
        let next = self.peek();
        error(
            next.offset,
            format!("expected {what}, found {}", self.describe(next)),
        )
    }

    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        offset: usize,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        if self.depth >= MAX_NESTING {
            return Err(error(
                offset,
                format!("expression nests more than {MAX_NESTING} levels deep"),
            ));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn is_not(&self) -> bool {
        let t = self.peek();
        t.kind == TokenKind::Bang || t.is_word("not")
    }

    /// The binary operator at the current token, if any.
    fn binary_op(&self) -> Option<BinaryOp> {
        let t = self.peek();
        Some(match &t.kind {
            TokenKind::OrOr => BinaryOp::Or,
            TokenKind::AndAnd => BinaryOp::And,
            TokenKind::EqEq => BinaryOp::Cmp(CmpOp::Eq),
            TokenKind::NotEq => BinaryOp::Cmp(CmpOp::Ne),
            TokenKind::Lt => BinaryOp::Cmp(CmpOp::Lt),
            TokenKind::Le => BinaryOp::Cmp(CmpOp::Le),
            TokenKind::Gt => BinaryOp::Cmp(CmpOp::Gt),
            TokenKind::Ge => BinaryOp::Cmp(CmpOp::Ge),
            TokenKind::Match => BinaryOp::Match { negate: false },
            TokenKind::NotMatch => BinaryOp::Match { negate: true },
            TokenKind::Plus => BinaryOp::Arith(ArithOp::Add),
            TokenKind::Minus => BinaryOp::Arith(ArithOp::Sub),
            TokenKind::Star => BinaryOp::Arith(ArithOp::Mul),
            TokenKind::Slash => BinaryOp::Arith(ArithOp::Div),
            TokenKind::Percent => BinaryOp::Arith(ArithOp::Rem),
            TokenKind::Ident(word) => match word.as_str() {
                "or" => BinaryOp::Or,
                "and" => BinaryOp::And,
                "in" => BinaryOp::In { negate: false },
                "not" if self.peek_second().is_word("in") => BinaryOp::In { negate: true },
                _ => return None,
            },
            _ => return None,
        })
    }

    /// An expression whose binary operators bind at least as tightly as `min`
    /// (precedence climbing). Same-level chains become one flat node.
    fn expr(&mut self, min: Level) -> Result<Node, ExprError> {
        let mut left = self.prefix(min)?;
        // Comparisons do not chain: `a < b < c` is an error, not `(a < b) < c`.
        let mut compared = false;
        while let Some(op) = self.binary_op() {
            let level = op.level();
            if level < min {
                break;
            }
            if compared && level == Level::Compare {
                return Err(self.chained_comparison());
            }
            self.advance();
            if matches!(op, BinaryOp::In { negate: true }) {
                self.advance();
            }
            let right_offset = self.peek().offset;
            let right = self.expr(level.next())?;
            compared = level == Level::Compare;
            left = combine(op, left, right, right_offset)?;
        }
        Ok(left)
    }

    /// An operand: prefix operators, then a postfix expression. `!`/`not` at the start
    /// of an operand of `&&`/`||` (or of the whole expression) negates a whole
    /// comparison (`!a == b` is `!(a == b)`); elsewhere (`a == !b`) only the operand.
    fn prefix(&mut self, min: Level) -> Result<Node, ExprError> {
        let operand_level = match &self.peek().kind {
            TokenKind::Minus => None,
            _ if self.is_not() => Some(min.max(Level::Not)),
            _ => return self.postfix(),
        };
        let offset = self.advance().offset;
        self.nested(offset, |p| {
            let operand = Box::new(match operand_level {
                Some(level) if level <= Level::Not => p.expr(level)?,
                _ => p.prefix(Level::Unary)?,
            });
            Ok(fold(match operand_level {
                None => Node::Neg(operand),
                Some(_) => Node::Not(operand),
            }))
        })
    }

    #[cold]
    fn chained_comparison(&self) -> ExprError {
        let next = self.peek();
        error(
            next.offset,
            format!(
                "comparisons do not chain: found {} after a comparison (write `a < b && b < c`)",
                self.describe(next)
            ),
        )
    }

    fn postfix(&mut self) -> Result<Node, ExprError> {
        let mut node = self.primary()?;
        loop {
            let step = match self.peek().kind {
                TokenKind::Dot => {
                    self.advance();
                    let TokenKind::Ident(name) = &self.peek().kind else {
                        return Err(self.expected("a field name after `.`"));
                    };
                    let step = Step::Field(name.clone());
                    self.advance();
                    step
                }
                TokenKind::LBracket => {
                    let open = self.advance().offset;
                    self.nested(open, |p| {
                        let index_offset = p.peek().offset;
                        let index = p.expr(Level::Or)?;
                        p.close(TokenKind::RBracket, "]", open)?;
                        step_of(index, index_offset)
                    })?
                }
                _ => return Ok(node),
            };
            node = match node {
                Node::Path { root, mut steps } => {
                    steps.push(step);
                    Node::Path { root, steps }
                }
                Node::Access(base, mut steps) => {
                    steps.push(step);
                    fold(Node::Access(base, steps))
                }
                other => fold(Node::Access(Box::new(other), vec![step])),
            };
        }
    }

    /// Consumes the closing `symbol` of a bracket opened at `open`.
    fn close(&mut self, kind: TokenKind, symbol: &str, open: usize) -> Result<(), ExprError> {
        if self.peek().kind == kind {
            self.advance();
            return Ok(());
        }
        let opener = match kind {
            TokenKind::RParen => "(",
            _ => "[",
        };
        Err(self.expected(&format!(
            "`{symbol}` to close the `{opener}` at column {}",
            open + 1
        )))
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Number(n) => {
                self.advance();
                Ok(Node::Literal(Value::Number(n)))
            }
            TokenKind::Str(s) => {
                self.advance();
                Ok(Node::Literal(Value::String(s)))
            }
            TokenKind::LParen => {
                self.advance();
                self.nested(token.offset, |p| {
                    let inner = p.expr(Level::Or)?;
                    p.close(TokenKind::RParen, ")", token.offset)?;
                    Ok(inner)
                })
            }
            TokenKind::LBracket => {
                self.advance();
                self.nested(token.offset, |p| p.array(token.offset))
            }
            TokenKind::Ident(name) => self.name(name, token.offset),
            _ => Err(self.expected("a value")),
        }
    }

    fn array(&mut self, open: usize) -> Result<Node, ExprError> {
        let mut items = Vec::new();
        loop {
            if self.peek().kind == TokenKind::RBracket {
                self.advance();
                break;
            }
            items.push(self.expr(Level::Or)?);
            match self.peek().kind {
                TokenKind::Comma => {
                    self.advance();
                }
                TokenKind::RBracket => {}
                _ => {
                    return Err(self.expected(&format!(
                        "`,` or `]` to close the `[` at column {}",
                        open + 1
                    )));
                }
            }
        }
        Ok(fold(Node::Array(items)))
    }

    /// An identifier in value position: literal, root, function call or field.
    fn name(&mut self, name: String, offset: usize) -> Result<Node, ExprError> {
        let literal = match name.as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            _ => None,
        };
        if let Some(value) = literal {
            self.advance();
            return Ok(Node::Literal(value));
        }
        if KEYWORDS.contains(&name.as_str()) {
            return Err(self.expected("a value"));
        }
        self.advance();
        if self.peek().kind == TokenKind::LParen {
            return self.call(&name, offset);
        }
        let (root, steps) = match name.as_str() {
            "key" => (Root::Key, Vec::new()),
            "timestamp" => (Root::Timestamp, Vec::new()),
            "event_time" => (Root::EventTime, Vec::new()),
            "headers" => (Root::Headers, Vec::new()),
            "value" => (Root::Value, Vec::new()),
            _ => (Root::Value, vec![Step::Field(name)]),
        };
        Ok(Node::Path { root, steps })
    }

    fn call(&mut self, name: &str, offset: usize) -> Result<Node, ExprError> {
        let Some(&(_, func, min, max)) = FUNCTIONS.iter().find(|(n, ..)| *n == name) else {
            let hint = did_you_mean(name)
                .map(|known| format!(" (did you mean `{known}`?)"))
                .unwrap_or_default();
            return Err(error(offset, format!("unknown function `{name}`{hint}")));
        };
        let open = self.advance().offset;
        let args = self.nested(open, |p| {
            let mut args = Vec::new();
            loop {
                if p.peek().kind == TokenKind::RParen {
                    p.advance();
                    break;
                }
                args.push(p.expr(Level::Or)?);
                match p.peek().kind {
                    TokenKind::Comma => {
                        p.advance();
                    }
                    TokenKind::RParen => {}
                    _ => {
                        return Err(p.expected(&format!(
                            "`,` or `)` to close the `(` at column {}",
                            open + 1
                        )));
                    }
                }
            }
            Ok(args)
        })?;
        if args.len() < min || args.len() > max {
            let wanted = if min == max {
                format!("{min} argument{}", if min == 1 { "" } else { "s" })
            } else if max == usize::MAX {
                format!("at least {min} argument{}", if min == 1 { "" } else { "s" })
            } else {
                format!("{min} to {max} arguments")
            };
            return Err(error(
                offset,
                format!("`{name}` takes {wanted}, got {}", args.len()),
            ));
        }
        Ok(fold(Node::Call(func, args)))
    }
}

/// Binding strength of binary operators, loosest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Or,
    And,
    /// Where a prefix `!`/`not` binds: looser than comparisons.
    Not,
    Compare,
    Sum,
    Product,
    /// Operands of unary `-` (and of `!` inside comparisons or arithmetic).
    Unary,
}

impl Level {
    /// The level of a left-associative operator's right operand.
    fn next(self) -> Self {
        match self {
            Level::Or => Level::And,
            Level::And => Level::Not,
            Level::Not | Level::Compare => Level::Sum,
            Level::Sum => Level::Product,
            Level::Product | Level::Unary => Level::Unary,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum BinaryOp {
    Or,
    And,
    Cmp(CmpOp),
    Match { negate: bool },
    In { negate: bool },
    Arith(ArithOp),
}

impl BinaryOp {
    fn level(self) -> Level {
        match self {
            BinaryOp::Or => Level::Or,
            BinaryOp::And => Level::And,
            BinaryOp::Cmp(_) | BinaryOp::Match { .. } | BinaryOp::In { .. } => Level::Compare,
            BinaryOp::Arith(ArithOp::Add | ArithOp::Sub) => Level::Sum,
            BinaryOp::Arith(_) => Level::Product,
        }
    }
}

/// `left op right`. Left-associative chains extend the left node instead of nesting it,
/// so a long chain stays one level deep (a left-deep tree and a left fold are the same).
fn combine(op: BinaryOp, left: Node, right: Node, right_offset: usize) -> Result<Node, ExprError> {
    let node = match op {
        BinaryOp::Or => match left {
            Node::Or(mut nodes) => {
                nodes.push(right);
                Node::Or(nodes)
            }
            left => Node::Or(vec![left, right]),
        },
        BinaryOp::And => match left {
            Node::And(mut nodes) => {
                nodes.push(right);
                Node::And(nodes)
            }
            left => Node::And(vec![left, right]),
        },
        BinaryOp::Arith(op) => match left {
            Node::Arith { first, mut rest } => {
                rest.push((op, right));
                Node::Arith { first, rest }
            }
            left => Node::Arith {
                first: Box::new(left),
                rest: vec![(op, right)],
            },
        },
        BinaryOp::Cmp(op) => Node::Compare(op, Box::new(left), Box::new(right)),
        BinaryOp::In { negate } => Node::In {
            needle: Box::new(left),
            haystack: Box::new(right),
            negate,
        },
        BinaryOp::Match { negate } => {
            let regex = compile_regex(&right, right_offset, negate)?;
            Node::Match {
                subject: Box::new(left),
                regex: Box::new(regex),
                negate,
            }
        }
    };
    Ok(fold(node))
}

/// The regex on the right of `=~`/`!~`: a string literal, compiled now.
fn compile_regex(right: &Node, offset: usize, negate: bool) -> Result<Regex, ExprError> {
    let Node::Literal(Value::String(pattern)) = right else {
        return Err(error(
            offset,
            format!(
                "the right side of `{}` must be a string literal (the regex)",
                if negate { "!~" } else { "=~" }
            ),
        ));
    };
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| error(offset, regex_message(&e)))
}

/// The step an index expression gives: constants become fields or indexes now.
fn step_of(index: Node, offset: usize) -> Result<Step, ExprError> {
    match index {
        Node::Literal(Value::String(name)) => Ok(Step::Field(name)),
        Node::Literal(Value::Number(n)) => n
            .as_i64()
            .map(Step::Index)
            .ok_or_else(|| error(offset, "an index must be an integer")),
        Node::Literal(_) => Err(error(
            offset,
            "an index must be a number or a string (a field name)",
        )),
        other => Ok(Step::Dynamic(Box::new(other))),
    }
}

/// Replaces a node whose children are all constants by its value. A node that fails
/// (`1 + "a"`) is kept, so the error surfaces per record like any other.
fn fold(node: Node) -> Node {
    if !node.children_constant() {
        return node;
    }
    match eval::eval_constant(&node) {
        Ok(value) => Node::Literal(value),
        Err(_) => node,
    }
}

/// The one line of a regex error that says what is wrong.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    let reason = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error:"))
        .map_or_else(
            || text.lines().next().unwrap_or_default().to_owned(),
            |r| r.trim().to_owned(),
        );
    format!("invalid regex: {reason}")
}

/// The known function nearest to `name`, if it is close enough to be a typo.
fn did_you_mean(name: &str) -> Option<&'static str> {
    let limit = if name.chars().count() <= 3 { 1 } else { 2 };
    // `lenght`, `lowercase`: a known name that starts the unknown one is a good guess.
    let extends = |known: &str| known.len() >= 3 && name.starts_with(known);
    FUNCTIONS
        .iter()
        .map(|(known, ..)| (edit_distance(name, known), *known))
        .filter(|(distance, known)| *distance <= limit || extends(known))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance, counting a swap of neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        if let Some(first) = current.first_mut() {
            *first = i + 1;
        }
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let substitute = previous.get(j).map_or(usize::MAX, |d| d + cost);
            let delete = previous.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = current.get(j).map_or(usize::MAX, |d| d + 1);
            let mut best = substitute.min(delete).min(insert);
            let swapped = i > 0
                && j > 0
                && a.get(i - 1) == Some(&cb)
                && b.get(j - 1) == Some(&ca)
                && ca != cb;
            if swapped && let Some(d) = before.get(j - 1) {
                best = best.min(d + 1);
            }
            if let Some(cell) = current.get_mut(j + 1) {
                *cell = best;
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous.last().copied().unwrap_or(0)
}
