//! Finds the line of a key path (`providers.local.timeouts.connect_ms`) in JSON5 text, so
//! errors can say where a mistake is. A small structural scanner: it understands strings,
//! comments, objects and arrays and nothing else; values are skipped.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Renders a path as users read it: `providers.local.models[1].id`.
pub(crate) fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Converts a `serde_path_to_error` path into segments (enum variants are skipped).
pub(crate) fn from_serde_path(path: &serde_path_to_error::Path) -> Vec<Segment> {
    use serde_path_to_error::Segment as S;
    let mut out = Vec::new();
    for seg in path.iter() {
        match seg {
            S::Map { key } => out.push(Segment::Key(key.clone())),
            S::Seq { index } => out.push(Segment::Index(*index)),
            S::Enum { .. } => {}
            S::Unknown => break,
        }
    }
    out
}

/// Nesting deeper than this is not followed (a config is never that deep).
const MAX_DEPTH: usize = 64;

/// The 1-based line where the deepest existing prefix of `path` is written: the key for an
/// object member, the value's first character for an array element. `None` when not even
/// the first segment can be found (or the path is empty).
pub(crate) fn line_of(text: &str, path: &[Segment]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    scanner.skip_trivia();
    let mut best = None;
    scanner.value(path, 0, &mut best);
    best
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
        }
        self.pos += 1;
    }

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.bump(),
                b'/' if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                b'/' if self.bytes.get(self.pos + 1) == Some(&b'*') => {
                    self.bump();
                    self.bump();
                    while let Some(c) = self.peek() {
                        if c == b'*' && self.bytes.get(self.pos + 1) == Some(&b'/') {
                            self.bump();
                            self.bump();
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return,
            }
        }
    }

    /// Reads a quoted string (the opening quote is at `pos`) and returns its content with
    /// simple escapes undone.
    fn string(&mut self) -> String {
        let quote = self.peek().unwrap_or(b'"');
        self.bump();
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            if c == quote {
                self.bump();
                break;
            }
            if c == b'\\' {
                self.bump();
                if let Some(e) = self.peek() {
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'\n' => {}
                        other => out.push(other),
                    }
                    self.bump();
                }
                continue;
            }
            out.push(c);
            self.bump();
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Reads an unquoted token (identifier key, number, literal).
    fn bare(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(
                c,
                b' ' | b'\t'
                    | b'\r'
                    | b'\n'
                    | b','
                    | b':'
                    | b'{'
                    | b'}'
                    | b'['
                    | b']'
                    | b'"'
                    | b'\''
            ) || (c == b'/' && matches!(self.bytes.get(self.pos + 1), Some(b'/' | b'*')))
            {
                break;
            }
            self.bump();
        }
        String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned()
    }

    /// Skips one value without recursion: brackets are counted, strings and comments
    /// stepped over.
    fn skip_value(&mut self) {
        let mut open = 0usize;
        loop {
            self.skip_trivia();
            match self.peek() {
                None => return,
                Some(b'{' | b'[') => {
                    open += 1;
                    self.bump();
                }
                Some(b'}' | b']') => {
                    if open == 0 {
                        // The end of the enclosing container: leave it to the caller.
                        return;
                    }
                    open -= 1;
                    self.bump();
                }
                Some(b'"' | b'\'') => {
                    self.string();
                }
                Some(b',') if open == 0 => return,
                Some(b',' | b':') => self.bump(),
                Some(_) => {
                    if self.bare().is_empty() {
                        self.bump();
                    }
                }
            }
            if open == 0 {
                return;
            }
        }
    }

    /// Scans one value. `path[depth..]` is what remains to be found inside it; `best` gets
    /// the line of each matched segment (deeper matches overwrite shallower ones).
    fn value(&mut self, path: &[Segment], depth: usize, best: &mut Option<usize>) {
        let wanted = if depth < MAX_DEPTH {
            path.get(depth)
        } else {
            None
        };
        match self.peek() {
            Some(b'{') => {
                self.bump();
                while self.next_member(b'}') {
                    let key_line = self.line;
                    let key = match self.peek() {
                        Some(b'"' | b'\'') => self.string(),
                        _ => self.bare(),
                    };
                    if key.is_empty() {
                        // Not JSON5 we understand; stop rather than loop.
                        self.bump();
                        continue;
                    }
                    self.skip_trivia();
                    if self.peek() == Some(b':') {
                        self.bump();
                    }
                    self.skip_trivia();
                    let matched = matches!(wanted, Some(Segment::Key(k)) if *k == key);
                    self.member_value(matched, key_line, (path, depth), best);
                }
            }
            Some(b'[') => {
                self.bump();
                let mut index = 0;
                while self.next_member(b']') {
                    let matched = matches!(wanted, Some(Segment::Index(i)) if *i == index);
                    self.member_value(matched, self.line, (path, depth), best);
                    index += 1;
                }
            }
            Some(_) => self.skip_value(),
            None => {}
        }
    }

    /// Moves to the next member of the object or array that `close` ends: skips trivia and
    /// commas; `false` at the end of the text or once `close` is consumed.
    fn next_member(&mut self, close: u8) -> bool {
        loop {
            self.skip_trivia();
            match self.peek() {
                None => return false,
                Some(b) if b == close => {
                    self.bump();
                    return false;
                }
                Some(b',') => self.bump(),
                Some(_) => return true,
            }
        }
    }

    /// Scans a member's value: into it, recording `line`, when its key or index is the
    /// wanted segment `path[depth]`; past it otherwise.
    fn member_value(
        &mut self,
        matched: bool,
        line: usize,
        (path, depth): (&[Segment], usize),
        best: &mut Option<usize>,
    ) {
        if matched {
            *best = Some(line);
            self.value(path, depth + 1, best);
        } else {
            self.skip_value();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    const TEXT: &str = r#"// a comment with { braces [
{
  server: { listen: "127.0.0.1:4141" },
  /* block
     comment */
  providers: {
    'local': {
      api: "ollama", base_url: "http://x:1/{not a brace}",
      timeouts: {
        conect_ms: 2000,
      },
      models: [
        { id: "a" },
        {
          id: "b", bad: 1 },
      ],
    },
  },
}
"#;

    #[test]
    fn finds_nested_keys_and_array_elements() {
        let p = [
            key("providers"),
            key("local"),
            key("timeouts"),
            key("conect_ms"),
        ];
        assert_eq!(line_of(TEXT, &p), Some(10));
        let p = [
            key("providers"),
            key("local"),
            key("models"),
            Segment::Index(1),
            key("bad"),
        ];
        assert_eq!(line_of(TEXT, &p), Some(15));
        let p = [
            key("providers"),
            key("local"),
            key("models"),
            Segment::Index(0),
        ];
        assert_eq!(line_of(TEXT, &p), Some(13));
        let p = [key("server"), key("listen")];
        assert_eq!(line_of(TEXT, &p), Some(3));
    }

    #[test]
    fn missing_tail_gives_the_deepest_prefix() {
        let p = [key("providers"), key("local"), key("nothing")];
        assert_eq!(line_of(TEXT, &p), Some(7));
        assert_eq!(line_of(TEXT, &[key("absent")]), None);
        assert_eq!(line_of(TEXT, &[]), None);
    }

    #[test]
    fn survives_garbage() {
        for text in [
            "",
            "{",
            "[[[[",
            "{a:",
            "{'unterminated",
            "/* open",
            "}}}",
            "{:::}",
        ] {
            let _ = line_of(text, &[key("a"), key("b")]);
        }
    }

    #[test]
    fn renders_paths() {
        let p = [
            key("providers"),
            key("local"),
            key("models"),
            Segment::Index(2),
            key("id"),
        ];
        assert_eq!(render_path(&p), "providers.local.models[2].id");
    }
}
