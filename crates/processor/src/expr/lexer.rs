//! Tokens of the expression language, each with the byte offset it starts at.

use serde_json::Number;

use super::ExprError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    /// A name: a field, a root (`key`, `headers`, …), a function or a keyword.
    Ident(String),
    /// A number literal.
    Number(Number),
    /// A string literal, escapes resolved.
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    AndAnd,
    OrOr,
    Bang,
    /// The end of the source (always the last token).
    End,
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// Byte offset of its first character.
    pub(super) offset: usize,
    /// Byte length in the source (0 for [`TokenKind::End`]).
    pub(super) len: usize,
}

impl Token {
    /// Whether this is the identifier `word` (keywords are identifiers to the lexer).
    pub(super) fn is_word(&self, word: &str) -> bool {
        matches!(&self.kind, TokenKind::Ident(name) if name == word)
    }
}

/// Splits `source` into tokens, ending with [`TokenKind::End`].
pub(super) fn tokenize(source: &str) -> Result<Vec<Token>, ExprError> {
    let mut lexer = Lexer {
        source,
        bytes: source.as_bytes(),
        pos: 0,
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let end = token.kind == TokenKind::End;
        tokens.push(token);
        if end {
            return Ok(tokens);
        }
    }
}

struct Lexer<'s> {
    source: &'s str,
    bytes: &'s [u8],
    pos: usize,
}

fn error(offset: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        offset,
        message: message.into(),
    }
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos.saturating_add(ahead)).copied()
    }

    fn next_token(&mut self) -> Result<Token, ExprError> {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(byte) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::End,
                offset: start,
                len: 0,
            });
        };
        let two = |kind| (kind, 2);
        let one = |kind| (kind, 1);
        let (kind, len) = match (byte, self.peek_at(1)) {
            (b'"' | b'\'', _) => return self.string(byte),
            (b'0'..=b'9', _) => return self.number(),
            (b'a'..=b'z' | b'A'..=b'Z' | b'_', _) => return Ok(self.ident()),
            (b'(', _) => one(TokenKind::LParen),
            (b')', _) => one(TokenKind::RParen),
            (b'[', _) => one(TokenKind::LBracket),
            (b']', _) => one(TokenKind::RBracket),
            (b',', _) => one(TokenKind::Comma),
            (b'.', _) => one(TokenKind::Dot),
            (b'+', _) => one(TokenKind::Plus),
            (b'-', _) => one(TokenKind::Minus),
            (b'*', _) => one(TokenKind::Star),
            (b'/', _) => one(TokenKind::Slash),
            (b'%', _) => one(TokenKind::Percent),
            (b'=', Some(b'=')) => two(TokenKind::EqEq),
            (b'=', Some(b'~')) => two(TokenKind::Match),
            (b'!', Some(b'=')) => two(TokenKind::NotEq),
            (b'!', Some(b'~')) => two(TokenKind::NotMatch),
            (b'!', _) => one(TokenKind::Bang),
            (b'<', Some(b'=')) => two(TokenKind::Le),
            (b'<', _) => one(TokenKind::Lt),
            (b'>', Some(b'=')) => two(TokenKind::Ge),
            (b'>', _) => one(TokenKind::Gt),
            (b'&', Some(b'&')) => two(TokenKind::AndAnd),
            (b'|', Some(b'|')) => two(TokenKind::OrOr),
            (b'=', _) => {
                return Err(error(start, "`=` is not an operator: use `==` to compare"));
            }
            (b'&', _) => return Err(error(start, "`&` is not an operator: use `&&` or `and`")),
            (b'|', _) => return Err(error(start, "`|` is not an operator: use `||` or `or`")),
            _ => {
                let shown = self
                    .source
                    .get(start..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(error(start, format!("unexpected character `{shown}`")));
            }
        };
        self.pos += len;
        Ok(Token {
            kind,
            offset: start,
            len,
        })
    }

    fn ident(&mut self) -> Token {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        let name = self.source.get(start..self.pos).unwrap_or_default();
        Token {
            kind: TokenKind::Ident(name.to_owned()),
            offset: start,
            len: self.pos - start,
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// `123`, `1.5`, `1e9`, `2.5E-3`. A `.` belongs to the number only when a digit
    /// follows it, so `a[0].b` lexes as index then field.
    fn number(&mut self) -> Result<Token, ExprError> {
        let start = self.pos;
        self.digits();
        let mut float = false;
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            float = true;
            self.pos += 1;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some(b'+' | b'-')));
            if self.peek_at(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                float = true;
                self.pos += 1 + sign;
                self.digits();
            }
        }
        if self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(error(
                self.pos,
                "a number must be followed by an operator, not a letter",
            ));
        }
        let text = self.source.get(start..self.pos).unwrap_or_default();
        let number = if float {
            text.parse::<f64>().ok().and_then(Number::from_f64)
        } else if let Ok(n) = text.parse::<u64>() {
            Some(Number::from(n))
        } else {
            // Too big for an integer: keep it as a float, as JSON parsers do.
            text.parse::<f64>().ok().and_then(Number::from_f64)
        };
        let Some(number) = number else {
            return Err(error(start, format!("number `{text}` is out of range")));
        };
        Ok(Token {
            kind: TokenKind::Number(number),
            offset: start,
            len: self.pos - start,
        })
    }

    fn string(&mut self, quote: u8) -> Result<Token, ExprError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            // Copy the run up to the next quote or backslash as one slice.
            let run_start = self.pos;
            while self.peek().is_some_and(|b| b != quote && b != b'\\') {
                self.pos += 1;
            }
            // Quotes and backslashes are ASCII, so the run ends on a char boundary.
            text.push_str(self.source.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(error(start, "unterminated string")),
                Some(b'\\') => {
                    let escape_at = self.pos;
                    self.pos += 1;
                    let ch = self.escape(escape_at)?;
                    text.push(ch);
                }
                Some(_) => {
                    self.pos += 1;
                    return Ok(Token {
                        kind: TokenKind::Str(text),
                        offset: start,
                        len: self.pos - start,
                    });
                }
            }
        }
    }

    /// The character of the escape after a backslash at `escape_at` (already consumed).
    fn escape(&mut self, escape_at: usize) -> Result<char, ExprError> {
        let Some(byte) = self.peek() else {
            return Err(error(escape_at, "unterminated string"));
        };
        self.pos += 1;
        let ch = match byte {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'0' => '\0',
            b'\\' => '\\',
            b'"' => '"',
            b'\'' => '\'',
            b'/' => '/',
            b'u' => return self.unicode_escape(escape_at),
            _ => {
                let shown = self
                    .source
                    .get(escape_at..)
                    .and_then(|rest| rest.chars().nth(1))
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(error(
                    escape_at,
                    format!(
                        "unknown escape `\\{shown}` (known: \\n \\t \\r \\0 \\\\ \\\" \\' \\/ \\uXXXX \\u{{X…}})"
                    ),
                ));
            }
        };
        Ok(ch)
    }

    /// `\uXXXX` (a surrogate pair as two escapes) or `\u{X…}`.
    fn unicode_escape(&mut self, escape_at: usize) -> Result<char, ExprError> {
        let bad = || error(escape_at, "invalid unicode escape: use \\uXXXX or \\u{X…}");
        let code = if self.peek() == Some(b'{') {
            self.pos += 1;
            let hex_start = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            if self.peek() != Some(b'}') || self.pos == hex_start || self.pos - hex_start > 6 {
                return Err(bad());
            }
            let hex = self.source.get(hex_start..self.pos).unwrap_or_default();
            self.pos += 1;
            u32::from_str_radix(hex, 16).map_err(|_| bad())?
        } else {
            let high = self.hex4().ok_or_else(bad)?;
            if (0xD800..0xDC00).contains(&high) {
                // A high surrogate must be followed by `\u` and a low surrogate.
                if self.peek() != Some(b'\\') || self.peek_at(1) != Some(b'u') {
                    return Err(bad());
                }
                self.pos += 2;
                let low = self.hex4().ok_or_else(bad)?;
                if !(0xDC00..0xE000).contains(&low) {
                    return Err(bad());
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            } else {
                high
            }
        };
        char::from_u32(code).ok_or_else(bad)
    }

    fn hex4(&mut self) -> Option<u32> {
        let end = self.pos.checked_add(4)?;
        let hex = self.source.get(self.pos..end)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos = end;
        u32::from_str_radix(hex, 16).ok()
    }
}
