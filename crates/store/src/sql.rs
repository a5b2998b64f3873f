//! SQL text with placeholders written for the backend that runs it
//! (`$1`, `$2`, ... for PostgreSQL; `?` for SQLite, which binds anonymous
//! parameters by position without looking names up), and the values bound
//! to them.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Arguments, AssertSqlSafe};

use crate::Backend;

/// Marks a placeholder in the text until the backend is known; fixed
/// fragments never contain it.
const PLACEHOLDER: char = '\u{1}';

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    OptInt(Option<i64>),
    Text(Option<String>),
    Bytes(Vec<u8>),
}

/// A statement built from fixed fragments and bound values. Values never
/// enter the text.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub(crate) fn new(text: &'static str) -> Self {
        Self {
            text: text.to_owned(),
            binds: Vec::new(),
        }
    }

    /// Appends a fixed fragment.
    pub(crate) fn push(&mut self, fragment: &'static str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.text.push(PLACEHOLDER);
        self
    }

    pub(crate) fn int(&mut self, v: i64) -> &mut Self {
        self.bind(Bind::Int(v))
    }

    pub(crate) fn text(&mut self, v: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(Some(v.into())))
    }

    pub(crate) fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        self.bind(Bind::OptInt(v))
    }

    pub(crate) fn opt_text(&mut self, v: Option<String>) -> &mut Self {
        self.bind(Bind::Text(v))
    }

    pub(crate) fn bytes(&mut self, v: Vec<u8>) -> &mut Self {
        self.bind(Bind::Bytes(v))
    }

    /// The query, ready to run on `backend`.
    pub(crate) fn build(self, backend: Backend) -> Query<'static, Any, AnyArguments> {
        let mut text = String::with_capacity(self.text.len() + 4 * self.binds.len());
        let mut n = 0;
        for c in self.text.chars() {
            if c == PLACEHOLDER {
                n += 1;
                match backend {
                    Backend::Postgres => {
                        text.push('$');
                        text.push_str(&n.to_string());
                    }
                    Backend::Sqlite => text.push('?'),
                }
            } else {
                text.push(c);
            }
        }
        let mut args = AnyArguments::default();
        for b in self.binds {
            // Adding a supported type to AnyArguments does not fail.
            let _ = match b {
                Bind::Int(v) => args.add(v),
                Bind::OptInt(v) => args.add(v),
                Bind::Text(v) => args.add(v),
                Bind::Bytes(v) => args.add(v),
            };
        }
        // Safe: the text holds only the fixed fragments above and numbered
        // placeholders; every value is bound.
        sqlx::query_with(AssertSqlSafe(text), args)
    }
}
