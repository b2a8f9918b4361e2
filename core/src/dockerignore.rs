//! The `.dockerignore` matcher: which paths of a build context are left out.
//!
//! Follows docker's semantics on '/'-separated relative paths:
//!
//! - blank lines and lines starting with `#` are skipped; surrounding whitespace is trimmed;
//! - `!` negates a rule (re-includes what an earlier rule excluded);
//! - every pattern is relative to the context root: a leading `/` changes nothing, and a
//!   pattern without a `/` (`*.log`) matches at the root only, as in docker (not gitignore);
//! - a pattern matches a path or any of its parent directories (`build` excludes
//!   `build/out/x`), and the last rule that matches a path decides;
//! - a trailing `/` makes a directory rule: it matches directories only (the caller says
//!   which paths are directories);
//! - `*` matches any run of characters and `?` one character, both within one segment
//!   (never across '/'); `\` makes the next character literal.
//!
//! `**` and `[...]` classes are refused with an error naming the line: silently
//! mis-applying them could upload files the author meant to keep out.

/// Why a `.dockerignore` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IgnoreError {
    /// A `**` wildcard, which whim does not support.
    #[error(
        ".dockerignore line {line}: `{text}` uses `**`, which whim does not support: list the directories, or use `*` within one path segment"
    )]
    DoubleStar {
        /// 1-based line number.
        line: usize,
        /// The line as written (trimmed; cut after 80 characters).
        text: String,
    },
    /// A `[...]` character class, which whim does not support.
    #[error(".dockerignore line {line}: `{text}` uses a `[...]` character class, which whim does not support: use `?` or list the names")]
    CharacterClass {
        /// 1-based line number.
        line: usize,
        /// The line as written (trimmed; cut after 80 characters).
        text: String,
    },
    /// A `\` at the end of a pattern, escaping nothing.
    #[error(".dockerignore line {line}: `{text}` ends with a lone `\\`: remove it or escape a character with it")]
    TrailingEscape {
        /// 1-based line number.
        line: usize,
        /// The line as written (trimmed; cut after 80 characters).
        text: String,
    },
}

/// One piece of a segment pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This exact character.
    Literal(char),
    /// `?`: any one character.
    One,
    /// `*`: any run of characters.
    Any,
}

/// One rule of a `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `!`: re-include what matches.
    negated: bool,
    /// Trailing `/`: matches directories only.
    dir_only: bool,
    /// One token list per path segment; empty never matches.
    segments: Vec<Vec<Token>>,
}

/// A parsed `.dockerignore`: answers whether a context path is excluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreMatcher {
    rules: Vec<Rule>,
}

impl IgnoreMatcher {
    /// Parses the text of a `.dockerignore` (a leading UTF-8 BOM is ignored).
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            if let Some(rule) = parse_line(index + 1, raw)? {
                rules.push(rule);
            }
        }
        Ok(Self { rules })
    }

    /// Whether `path` ('/'-separated, relative to the context root) is left out of the
    /// context; `is_dir` says whether it names a directory (for trailing-`/` rules).
    #[must_use]
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        let last = self.rules.iter().rev().find(|r| r.matches(&segments, is_dir));
        last.is_some_and(|r| !r.negated)
    }

    /// Whether some rule re-includes (`!`): then a walker MUST NOT skip an excluded
    /// directory's contents unseen, as a later rule may bring some of them back.
    #[must_use]
    pub fn has_negations(&self) -> bool {
        self.rules.iter().any(|r| r.negated)
    }

    /// Whether the file has no rules at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    /// Matches `path` itself (respecting `dir_only`) or one of its parent directories.
    fn matches(&self, path: &[&str], is_dir: bool) -> bool {
        let n = self.segments.len();
        if n == 0 || path.len() < n || (self.dir_only && path.len() == n && !is_dir) {
            return false;
        }
        self.segments.iter().zip(path).all(|(pattern, name)| glob(pattern, name))
    }
}

/// Parses one line; `None` for blank lines and comments.
fn parse_line(line: usize, raw: &str) -> Result<Option<Rule>, IgnoreError> {
    if raw.starts_with('#') {
        return Ok(None);
    }
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (negated, pattern) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    let dir_only = pattern.ends_with('/') && !pattern.trim_end_matches('/').is_empty();
    let mut segments = Vec::new();
    for segment in clean(pattern) {
        segments.push(tokens(segment).map_err(|kind| kind.at(line, text))?);
    }
    Ok(Some(Rule { negated, dir_only, segments }))
}

/// The pattern's segments after docker's `filepath.Clean`: no empty or `.` segments, `..`
/// resolved lexically (a leading `..` is kept and can never match a context path).
fn clean(pattern: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for segment in pattern.split('/') {
        match segment {
            "" | "." => {}
            ".." if out.last().is_some_and(|s| *s != "..") => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out
}

/// What is wrong with a segment, before the line is known.
enum Refusal {
    DoubleStar,
    CharacterClass,
    TrailingEscape,
}

impl Refusal {
    fn at(self, line: usize, text: &str) -> IgnoreError {
        // A message quotes at most 80 characters of the line.
        let text = match text.char_indices().nth(80) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        };
        match self {
            Refusal::DoubleStar => IgnoreError::DoubleStar { line, text },
            Refusal::CharacterClass => IgnoreError::CharacterClass { line, text },
            Refusal::TrailingEscape => IgnoreError::TrailingEscape { line, text },
        }
    }
}

/// Tokenises one segment, refusing `**` and `[`.
fn tokens(segment: &str) -> Result<Vec<Token>, Refusal> {
    let mut out = Vec::new();
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        let token = match c {
            '\\' => Token::Literal(chars.next().ok_or(Refusal::TrailingEscape)?),
            '[' => return Err(Refusal::CharacterClass),
            '?' => Token::One,
            '*' if out.last() == Some(&Token::Any) => return Err(Refusal::DoubleStar),
            '*' => Token::Any,
            c => Token::Literal(c),
        };
        out.push(token);
    }
    Ok(out)
}

/// Matches one segment pattern against one name (iterative, with one backtrack point).
fn glob(pattern: &[Token], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(Token::Any) => {
                backtrack = Some((p, n));
                p += 1;
            }
            Some(Token::One) => (p, n) = (p + 1, n + 1),
            Some(Token::Literal(c)) if *c == name[n] => (p, n) = (p + 1, n + 1),
            _ => match backtrack {
                Some((bp, bn)) => {
                    backtrack = Some((bp, bn + 1));
                    (p, n) = (bp + 1, bn + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|t| *t == Token::Any)
}

#[cfg(test)]
mod tests;
