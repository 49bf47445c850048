//! A small reader for EDN, the Clojure data notation Jepsen and Knossos write histories in.
//!
//! It reads what histories contain: `nil`, booleans, integers, strings with escapes, keywords,
//! symbols, vectors, lists, sets and maps; commas are whitespace and `;` starts a comment.
//! Tagged values (`#jepsen.independent.Tuple{...}`, `#inst "..."`) keep their value and drop the
//! tag; `#_` discards the next value. Floats, ratios and characters are refused: the checker
//! compares values exactly, and histories of the supported models do not use them.

use std::collections::BTreeMap;

use crate::value::Value;

/// An EDN value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer (a trailing `N` is accepted when the value fits in 64 bits).
    Int(i64),
    /// A string.
    Str(String),
    /// A keyword, without its leading colon: `:invoke` is `Keyword("invoke")`.
    Keyword(String),
    /// A symbol.
    Symbol(String),
    /// `[...]`.
    Vector(Vec<Edn>),
    /// `(...)`.
    List(Vec<Edn>),
    /// `#{...}`, in the order written.
    Set(Vec<Edn>),
    /// `{...}`, pairs in the order written.
    Map(Vec<(Edn, Edn)>),
}

/// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
const DEPTH_MAX: usize = 64;

impl Edn {
    /// The value under keyword `name` in a map.
    pub fn get(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(kw) if kw == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The checker's value. Keywords and symbols become strings without the colon (so `{:from
    /// 0}` reads like `{"from": 0}`), all sequences become lists, and map keys become strings
    /// (integers in decimal).
    pub fn to_value(&self) -> Value {
        match self {
            Edn::Nil => Value::Nil,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::Int(*i),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::Str(s.clone()),
            Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
                Value::List(items.iter().map(Edn::to_value).collect())
            }
            Edn::Map(pairs) => {
                let map: BTreeMap<String, Value> = pairs
                    .iter()
                    .map(|(k, v)| {
                        let key = match k.to_value() {
                            Value::Str(s) => s,
                            other => other.to_string(),
                        };
                        (key, v.to_value())
                    })
                    .collect();
                Value::Map(map)
            }
        }
    }
}

/// Parses exactly one EDN value (surrounding whitespace and comments allowed). The error says
/// what is wrong and at which byte.
pub fn parse_edn(text: &str) -> Result<Edn, String> {
    let mut reader = Reader { text, pos: 0 };
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.pos < text.len() {
        return Err(format!("unexpected text after the value at byte {}", reader.pos));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

fn is_symbol_char(c: char) -> bool {
    c.is_alphanumeric() || "*+!-_?$%&=<>/.:#'".contains(c)
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn skip_whitespace(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' {
                self.pos += c.len_utf8();
            } else if c == ';' {
                self.pos =
                    self.text[self.pos..].find('\n').map_or(self.text.len(), |n| self.pos + n);
            } else {
                break;
            }
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Edn, String> {
        if depth > DEPTH_MAX {
            return self.error("nested too deeply");
        }
        self.skip_whitespace();
        let Some(c) = self.peek() else {
            return self.error("expected a value, found the end");
        };
        match c {
            '[' => self.sequence(']', depth).map(Edn::Vector),
            '(' => self.sequence(')', depth).map(Edn::List),
            '{' => self.map(depth),
            '"' => self.string().map(Edn::Str),
            ':' => {
                self.pos += 1;
                let name = self.word();
                if name.is_empty() {
                    return self.error("empty keyword");
                }
                Ok(Edn::Keyword(name.to_owned()))
            }
            '#' => self.dispatch(depth),
            '\\' => self.error("character literals are not supported"),
            c if c.is_ascii_digit() => self.number(),
            '+' | '-' if self.text[self.pos + 1..].starts_with(|d: char| d.is_ascii_digit()) => {
                self.number()
            }
            c if is_symbol_char(c) => {
                let word = self.word();
                Ok(match word {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ => Edn::Symbol(word.to_owned()),
                })
            }
            c => self.error(&format!("unexpected {c:?}")),
        }
    }

    fn word(&mut self) -> &str {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|c| is_symbol_char(*c)) {
            self.pos += c.len_utf8();
        }
        &self.text[start..self.pos]
    }

    fn number(&mut self) -> Result<Edn, String> {
        let start = self.pos;
        let word = self.word().to_owned();
        let digits = word.strip_suffix('N').unwrap_or(&word);
        match digits.parse::<i64>() {
            Ok(n) => Ok(Edn::Int(n)),
            Err(_) => {
                self.pos = start;
                if digits.contains(['.', 'e', 'E', '/', 'M']) {
                    self.error(&format!(
                        "{word} is not an integer (floats and ratios are not supported)"
                    ))
                } else {
                    self.error(&format!("{word} is not a 64-bit integer"))
                }
            }
        }
    }

    fn sequence(&mut self, close: char, depth: usize) -> Result<Vec<Edn>, String> {
        self.pos += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return self.error(&format!("missing {close:?}")),
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => {
                    if let Some(item) = self.item(depth)? {
                        items.push(item);
                    }
                }
            }
        }
    }

    /// One element of a collection: `None` for a `#_`-discarded one.
    fn item(&mut self, depth: usize) -> Result<Option<Edn>, String> {
        if self.text[self.pos..].starts_with("#_") {
            self.pos += 2;
            self.value(depth + 1)?;
            return Ok(None);
        }
        self.value(depth + 1).map(Some)
    }

    fn map(&mut self, depth: usize) -> Result<Edn, String> {
        let items = self.sequence('}', depth)?;
        if items.len() % 2 != 0 {
            return self.error("a map needs an even number of forms");
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            pairs.push((k, v));
        }
        Ok(Edn::Map(pairs))
    }

    fn dispatch(&mut self, depth: usize) -> Result<Edn, String> {
        let rest = &self.text[self.pos..];
        if rest.starts_with("#{") {
            self.pos += 1;
            return self.sequence('}', depth).map(Edn::Set);
        }
        if rest.starts_with("#_") {
            self.pos += 2;
            self.value(depth + 1)?;
            return self.value(depth);
        }
        // A tag: `#name value`; keep the value.
        self.pos += 1;
        if self.word().is_empty() {
            return self.error("expected a tag after #");
        }
        self.value(depth + 1)
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        let mut chars = self.text[self.pos..].char_indices();
        while let Some((offset, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += offset + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, escaped)) = chars.next() else { break };
                    match escaped {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        '/' => out.push('/'),
                        'u' => {
                            let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                            let code = u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| hex.len() == 4)
                                .and_then(char::from_u32);
                            match code {
                                Some(ch) => out.push(ch),
                                None => {
                                    self.pos += offset;
                                    return self.error(&format!("bad escape \\u{hex}"));
                                }
                            }
                        }
                        other => {
                            self.pos += offset;
                            return self.error(&format!("unknown escape \\{other}"));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        self.error("unterminated string")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Edn {
        Edn::Keyword(s.into())
    }

    #[test]
    fn reads_what_histories_contain() {
        let edn = parse_edn(
            r#"{:process 0, :type :invoke, :f :put, :key "k", :value "v\"\n\u00e9", :n -3N,
                :none nil, :v [1 (2) #{3}], :t true ; a comment
                #_ :discarded :x #jepsen.independent.Tuple{:key 1}}"#,
        )
        .unwrap();
        assert_eq!(edn.get("process"), Some(&Edn::Int(0)));
        assert_eq!(edn.get("type"), Some(&kw("invoke")));
        assert_eq!(edn.get("value"), Some(&Edn::Str("v\"\né".into())));
        assert_eq!(edn.get("n"), Some(&Edn::Int(-3)));
        assert_eq!(edn.get("none"), Some(&Edn::Nil));
        assert_eq!(edn.get("t"), Some(&Edn::Bool(true)));
        assert_eq!(
            edn.get("v"),
            Some(&Edn::Vector(vec![
                Edn::Int(1),
                Edn::List(vec![Edn::Int(2)]),
                Edn::Set(vec![Edn::Int(3)])
            ]))
        );
        assert_eq!(edn.get("x"), Some(&Edn::Map(vec![(kw("key"), Edn::Int(1))])));
        assert_eq!(edn.get("discarded"), None);
    }

    #[test]
    fn converts_to_values() {
        let edn = parse_edn("{:from 0 :to 1 :amount 5 0 100}").unwrap();
        assert_eq!(
            serde_json::to_string(&edn.to_value()).unwrap(),
            r#"{"0":100,"amount":5,"from":0,"to":1}"#
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for (text, needle) in [
            ("[1 2", "missing"),
            ("{:a}", "even number"),
            ("\"abc", "unterminated"),
            ("1.5", "floats"),
            ("99999999999999999999", "64-bit"),
            ("\\a", "character"),
            ("\"\\q\"", "unknown escape"),
            ("[1] 2", "after the value"),
            ("", "end"),
            ("}", "unexpected"),
        ] {
            let err = parse_edn(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let deep = "[".repeat(100_000);
        assert!(parse_edn(&deep).unwrap_err().contains("deeply"));
    }
}
