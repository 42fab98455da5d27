//! The names of every option the macro reads, in one place.

use std::fmt::{self, Display};
use syn::Path;

/// An option or attribute name.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub(crate) struct Symbol(pub(crate) &'static str);

pub(crate) const CATEGORY: Symbol = Symbol("category");
pub(crate) const ERROR: Symbol = Symbol("error");
pub(crate) const SNAPSHOT_EVERY: Symbol = Symbol("snapshot_every");
pub(crate) const SNAPSHOT_VERSION: Symbol = Symbol("snapshot_version");
pub(crate) const VIS: Symbol = Symbol("vis");
pub(crate) const CRATE: Symbol = Symbol("crate");

pub(crate) const EVENT: Symbol = Symbol("event");
pub(crate) const NAME: Symbol = Symbol("name");
pub(crate) const VERSION: Symbol = Symbol("version");
pub(crate) const UPCAST: Symbol = Symbol("upcast");
pub(crate) const FROM: Symbol = Symbol("from");
pub(crate) const WITH: Symbol = Symbol("with");

pub(crate) const DOC: Symbol = Symbol("doc");
pub(crate) const CFG: Symbol = Symbol("cfg");
pub(crate) const SERDE: Symbol = Symbol("serde");
pub(crate) const ALLOW: Symbol = Symbol("allow");
pub(crate) const EXPECT: Symbol = Symbol("expect");
pub(crate) const WARN: Symbol = Symbol("warn");
pub(crate) const DENY: Symbol = Symbol("deny");

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
