//! Docker's word processing for instruction arguments: quotes, backslash escapes and
//! `$VAR` / `${VAR}` / `${VAR:-default}` / `${VAR:+alternative}` substitution.
//!
//! RUN, CMD and ENTRYPOINT are not processed here (their shell does it).

use std::collections::HashMap;

/// Variables visible to substitution: ARG values overlaid by ENV values.
pub(crate) type Vars = HashMap<String, String>;

/// Splits `input` into words (unquoted whitespace separates), expanding variables and
/// removing quotes.
pub(crate) fn words(input: &str, vars: &Vars) -> Result<Vec<String>, String> {
    Lexer::new(input, vars).run(true)
}

/// Processes `input` as one word: quotes removed and variables expanded, whitespace kept.
pub(crate) fn word(input: &str, vars: &Vars) -> Result<String, String> {
    Ok(Lexer::new(input, vars).run(false)?.concat())
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    vars: &'a Vars,
    out: Vec<String>,
    cur: String,
    /// The current word has content (possibly an empty quoted string).
    started: bool,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str, vars: &'a Vars) -> Self {
        Lexer { chars: input.chars().peekable(), vars, out: Vec::new(), cur: String::new(), started: false }
    }

    fn run(mut self, split: bool) -> Result<Vec<String>, String> {
        while let Some(c) = self.chars.next() {
            match c {
                c if split && c.is_whitespace() => self.end_word(),
                '\'' => self.single_quoted()?,
                '"' => self.double_quoted()?,
                '\\' => self.escaped(),
                '$' => self.dollar()?,
                c => self.push(c),
            }
        }
        self.end_word();
        Ok(self.out)
    }

    fn push(&mut self, c: char) {
        self.cur.push(c);
        self.started = true;
    }

    fn end_word(&mut self) {
        if self.started {
            self.out.push(std::mem::take(&mut self.cur));
            self.started = false;
        }
    }

    fn escaped(&mut self) {
        match self.chars.next() {
            Some(c) => self.push(c),
            None => self.push('\\'),
        }
    }

    fn single_quoted(&mut self) -> Result<(), String> {
        self.started = true;
        loop {
            match self.chars.next() {
                Some('\'') => return Ok(()),
                Some(c) => self.cur.push(c),
                None => return Err("unmatched ' (single quote)".into()),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<(), String> {
        self.started = true;
        loop {
            match self.chars.next() {
                Some('"') => return Ok(()),
                Some('\\') => match self.chars.peek() {
                    Some(&c) if matches!(c, '"' | '\\' | '$') => {
                        self.cur.push(c);
                        self.chars.next();
                    }
                    _ => self.cur.push('\\'),
                },
                Some('$') => self.dollar()?,
                Some(c) => self.cur.push(c),
                None => return Err("unmatched \" (double quote)".into()),
            }
        }
    }

    fn dollar(&mut self) -> Result<(), String> {
        match self.chars.peek() {
            Some('{') => {
                self.chars.next();
                let value = self.braced()?;
                self.cur.push_str(&value);
                self.started = true;
            }
            Some(&c) if c == '_' || c.is_ascii_alphanumeric() => {
                let name = self.name();
                self.cur.push_str(self.vars.get(&name).map_or("", String::as_str));
                self.started = true;
            }
            _ => self.push('$'),
        }
        Ok(())
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(&c) = self.chars.peek().filter(|c| **c == '_' || c.is_ascii_alphanumeric()) {
            name.push(c);
            self.chars.next();
        }
        name
    }

    /// `${NAME}`, `${NAME:-word}`, `${NAME:+word}`; the `{` is consumed.
    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: ${ without a variable name".into());
        }
        let value = self.vars.get(&name).cloned().unwrap_or_default();
        match self.chars.next() {
            Some('}') => Ok(value),
            Some(':') => {
                let op = self.chars.next();
                let alt = self.until_brace()?;
                match op {
                    Some('-') => Ok(if value.is_empty() { alt } else { value }),
                    Some('+') => Ok(if value.is_empty() { String::new() } else { alt }),
                    _ => Err(format!("unsupported modifier in ${{{name}:…}}: use :- or :+")),
                }
            }
            _ => Err(format!("bad substitution in ${{{name}…}}: missing }}")),
        }
    }

    /// The word after a `:-`/`:+` modifier, expanded, up to the closing brace.
    fn until_brace(&mut self) -> Result<String, String> {
        let mut raw = String::new();
        loop {
            match self.chars.next() {
                Some('}') => return word(&raw, self.vars),
                Some('\\') => {
                    raw.push('\\');
                    raw.extend(self.chars.next());
                }
                Some(c) => raw.push(c),
                None => return Err("bad substitution: missing }".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("NAME", "world"), ("EMPTY", "")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn splits_and_substitutes() {
        let cases: &[(&str, &[&str])] = &[
            ("a b  c", &["a", "b", "c"]),
            ("$A ${A}x", &["1", "1x"]),
            ("'$A' \"$A\" \\$A", &["$A", "1", "$A"]),
            ("\"hello $NAME\" ''", &["hello world", ""]),
            ("${MISSING:-dflt} ${A:-no} ${A:+yes} ${EMPTY:+no}x", &["dflt", "1", "yes", "x"]),
            ("a\\ b", &["a b"]),
            ("$ 5$", &["$", "5$"]),
            ("\"a\\\"b\\n\"", &["a\"b\\n"]),
        ];
        for (input, want) in cases {
            let want: Vec<String> = want.iter().map(|w| (*w).to_owned()).collect();
            assert_eq!(words(input, &vars()), Ok(want), "{input}");
        }
    }

    #[test]
    fn one_word_keeps_spaces() {
        assert_eq!(word("my  value $A", &vars()), Ok("my  value 1".into()));
    }

    #[test]
    fn rejects_broken_quoting() {
        for input in ["'open", "\"open", "${A", "${}", "${A:?x}"] {
            assert!(words(input, &vars()).is_err(), "{input}");
        }
    }
}
