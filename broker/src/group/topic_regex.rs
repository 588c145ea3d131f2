//! Topic-name regular expressions of KIP-848 regex subscriptions
//! (`SubscribedTopicRegex`).
//!
//! Kafka compiles them with RE2J (`com.google.re2j.Pattern`) and keeps a
//! topic when `pattern.matcher(topic).matches()`, i.e. when the *whole* name
//! matches. We compile with the `regex` crate (RE2 syntax, matching in time
//! linear in the input) and anchor the expression at both ends.
//!
//! An expression RE2J refuses is answered with INVALID_REGULAR_EXPRESSION and
//! the message Kafka builds from `PatternSyntaxException.getDescription()`;
//! [`TopicRegex::new`] returns RE2J's description for the errors both engines
//! share. Known differences in what is accepted:
//! - `x{` and `x{2,` are literals in RE2J and errors here;
//! - `\Q...\E` quoting is RE2J-only;
//! - `\d`, `\w`, `\s` and `\b` are Unicode-aware here and ASCII in RE2J,
//!   which cannot change a match: topic names are `[a-zA-Z0-9._-]`.

use regex_syntax::ast::{self, Ast, ErrorKind, RepetitionKind, RepetitionRange};

/// RE2J's largest repeat count (`{n,m}` with n or m above it is refused).
const MAX_REPEAT: u32 = 1000;

/// A compiled subscription regex that matches whole topic names.
#[derive(Debug, Clone)]
pub struct TopicRegex {
    re: regex::Regex,
}

impl TopicRegex {
    /// Compiles `source`; the error is RE2J's description of what is wrong.
    pub fn new(source: &str) -> Result<Self, String> {
        let parsed = ast::parse::Parser::new()
            .parse(source)
            .map_err(|e| describe_ast_error(e.kind()))?;
        check_re2j_limits(&parsed)?;
        regex_syntax::hir::translate::Translator::new()
            .translate(source, &parsed)
            .map_err(|e| describe_hir_error(e.kind()))?;
        let re = regex::RegexBuilder::new(&format!(r"\A(?:{source})\z"))
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => "expression too large".to_string(),
                other => other.to_string(),
            })?;
        Ok(Self { re })
    }

    /// Whether the whole of `name` matches (RE2J's `Matcher.matches()`).
    pub fn matches(&self, name: &str) -> bool {
        self.re.is_match(name)
    }
}

/// RE2J's `Parser` error strings (`ERR_*`) for the parse errors both have.
fn describe_ast_error(kind: &ErrorKind) -> String {
    let s = match kind {
        ErrorKind::GroupUnclosed => "missing closing )",
        // RE2J 1.8 reports an unopened ')' as a stack underflow.
        ErrorKind::GroupUnopened => "regexp/syntax: internal error",
        ErrorKind::ClassUnclosed => "missing closing ]",
        ErrorKind::ClassRangeInvalid | ErrorKind::ClassRangeLiteral => {
            "invalid character class range"
        }
        ErrorKind::ClassEscapeInvalid
        | ErrorKind::EscapeUnrecognized
        | ErrorKind::EscapeHexEmpty
        | ErrorKind::EscapeHexInvalid
        | ErrorKind::EscapeHexInvalidDigit
        | ErrorKind::UnsupportedBackreference
        | ErrorKind::SpecialWordBoundaryUnclosed
        | ErrorKind::SpecialWordBoundaryUnrecognized
        | ErrorKind::SpecialWordOrRepetitionUnexpectedEof => "invalid escape sequence",
        ErrorKind::EscapeUnexpectedEof => "trailing backslash at end of expression",
        ErrorKind::RepetitionMissing => "missing argument to repetition operator",
        ErrorKind::RepetitionCountInvalid
        | ErrorKind::RepetitionCountUnclosed
        | ErrorKind::RepetitionCountDecimalEmpty
        | ErrorKind::DecimalEmpty
        | ErrorKind::DecimalInvalid => "invalid repeat count",
        ErrorKind::FlagDanglingNegation
        | ErrorKind::FlagDuplicate { .. }
        | ErrorKind::FlagRepeatedNegation { .. }
        | ErrorKind::FlagUnexpectedEof
        | ErrorKind::FlagUnrecognized
        | ErrorKind::UnsupportedLookAround => "invalid or unsupported Perl syntax",
        ErrorKind::GroupNameDuplicate { .. } => "duplicate capture group name",
        ErrorKind::GroupNameEmpty
        | ErrorKind::GroupNameInvalid
        | ErrorKind::GroupNameUnexpectedEof => "invalid named capture",
        ErrorKind::NestLimitExceeded(_) => "expression nests too deeply",
        other => return other.to_string(),
    };
    s.to_string()
}

fn describe_hir_error(kind: &regex_syntax::hir::ErrorKind) -> String {
    use regex_syntax::hir::ErrorKind as H;
    match kind {
        H::UnicodePropertyNotFound | H::UnicodePropertyValueNotFound => {
            "invalid character class range".to_string()
        }
        other => other.to_string(),
    }
}

/// What RE2J refuses and the `regex` parser accepts: nested repetition
/// operators (`a**`, `a{2}{3}`) and repeat counts above 1000.
fn check_re2j_limits(node: &Ast) -> Result<(), String> {
    match node {
        Ast::Repetition(r) => {
            if let RepetitionKind::Range(range) = &r.op.kind {
                let (lo, hi) = match range {
                    RepetitionRange::Exactly(n) | RepetitionRange::AtLeast(n) => (*n, *n),
                    RepetitionRange::Bounded(a, b) => (*a, *b),
                };
                if lo > MAX_REPEAT || hi > MAX_REPEAT {
                    return Err("invalid repeat count".to_string());
                }
            }
            if matches!(*r.ast, Ast::Repetition(_)) {
                return Err("invalid nested repetition operator".to_string());
            }
            check_re2j_limits(&r.ast)
        }
        Ast::Group(g) => check_re2j_limits(&g.ast),
        Ast::Alternation(a) => a.asts.iter().try_for_each(check_re2j_limits),
        Ast::Concat(c) => c.asts.iter().try_for_each(check_re2j_limits),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, text: &str) -> bool {
        TopicRegex::new(re)
            .unwrap_or_else(|e| panic!("{re}: {e}"))
            .matches(text)
    }

    #[test]
    fn whole_name_matching() {
        assert!(m("orders", "orders"));
        assert!(!m("orders", "orders-v2"));
        assert!(!m("orders", "my-orders"));
        assert!(m("orders-.*", "orders-eu"));
        assert!(!m("orders-.*", "my-orders-eu"));
        assert!(m("a|b|cd", "cd"));
        assert!(!m("a|b|cd", "cdx"));
        assert!(m("(?i)ORDERS", "orders"));
        assert!(m("__consumer_offsets", "__consumer_offsets"));
        assert!(m("__.*", "__consumer_offsets"));
        assert!(m(r"t\d{2,3}", "t123"));
        assert!(!m(r"t\d{2,3}", "t1234"));
        // Flags inside the expression do not escape the anchoring group.
        assert!(!m("(?m)a$", "ab"));
        // Linear time: no catastrophic backtracking.
        let long = "a".repeat(5000);
        assert!(!m("(a*)*b", &long));
    }

    #[test]
    fn errors_read_like_re2j() {
        // (expression, RE2J 1.8's PatternSyntaxException.getDescription())
        for (bad, want) in [
            ("orders-(", "missing closing )"),
            ("((a)", "missing closing )"),
            ("a)", "regexp/syntax: internal error"),
            ("*a", "missing argument to repetition operator"),
            ("a**", "invalid nested repetition operator"),
            ("a++", "invalid nested repetition operator"),
            ("x{2}{3}", "invalid nested repetition operator"),
            ("[a", "missing closing ]"),
            ("a{3,1}", "invalid repeat count"),
            ("a{1001}", "invalid repeat count"),
            ("\\", "trailing backslash at end of expression"),
            ("[z-a]", "invalid character class range"),
            (r"\1", "invalid escape sequence"),
            ("(?=x)", "invalid or unsupported Perl syntax"),
            ("(?z)a", "invalid or unsupported Perl syntax"),
            (r"\p{Foo}", "invalid character class range"),
        ] {
            assert_eq!(TopicRegex::new(bad).err().as_deref(), Some(want), "{bad}");
        }
        for good in ["(?i)abc", r"\bx", "(?P<n>a)", "(?<n>a)", r"\pN", "a{1000}"] {
            assert!(TopicRegex::new(good).is_ok(), "{good}");
        }
    }
}
