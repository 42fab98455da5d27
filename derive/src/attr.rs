//! Reads the macro's options into typed structs: the container's from
//! `#[aggregate(...)]`, each event's from `#[event(...)]`. Unknown and duplicate options are
//! reported here, by the setter, spanned on the option's name; rules that relate options to
//! each other live in `check`.

use crate::ctxt::Ctxt;
use crate::symbol::*;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned as _;
use syn::{LitInt, LitStr, Token};

/// One option's value and the tokens of its name, for spans; `set` twice is an error.
struct Attr<'c, T> {
    cx: &'c Ctxt,
    name: Symbol,
    value: Option<Spanned<T>>,
}

/// A value and the span of the option name that gave it.
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    /// The value.
    pub(crate) value: T,
    /// The option's name, e.g. `snapshot_every`.
    pub(crate) name_span: Span,
}

impl<'c, T> Attr<'c, T> {
    fn none(cx: &'c Ctxt, name: Symbol) -> Self {
        Attr {
            cx,
            name,
            value: None,
        }
    }

    fn set(&mut self, path: &syn::Path, value: T) {
        if self.value.is_some() {
            self.cx
                .error_spanned_by(path, format!("duplicate option `{}`", self.name));
        } else {
            self.value = Some(Spanned {
                value,
                name_span: path.span(),
            });
        }
    }

    fn get(self) -> Option<Spanned<T>> {
        self.value
    }
}

/// A number option, with its literal kept for spans.
#[derive(Debug, Clone)]
pub(crate) struct Num<T> {
    /// The parsed value.
    pub(crate) value: T,
    /// The literal as written.
    pub(crate) lit: LitInt,
}

/// The options of `#[aggregate(...)]`.
#[derive(Debug)]
pub(crate) struct Container {
    /// `category = "story"`: the stream category (required).
    pub(crate) category: Option<Spanned<LitStr>>,
    /// `error = StoryError`: the commands' error type (required).
    pub(crate) error: Option<Spanned<syn::Type>>,
    /// `snapshot_every = N`: snapshots on, every N events.
    pub(crate) snapshot_every: Option<Spanned<Num<u64>>>,
    /// `snapshot_version = N`: the snapshot schema version (default 1).
    pub(crate) snapshot_version: Option<Spanned<Num<u32>>>,
    /// `vis = "pub(crate)"`: the visibility of the generated enum (default `pub`).
    pub(crate) vis: syn::Visibility,
    /// `crate = "::recount"`: where the `recount` crate is.
    pub(crate) krate: syn::Path,
    /// Options written with a value of the wrong kind (already reported): not missing.
    pub(crate) malformed: Vec<Symbol>,
}

const CONTAINER_OPTIONS: &str =
    "`category`, `error`, `snapshot_every`, `snapshot_version`, `vis`, `crate`";

impl Container {
    /// Reads the attribute's arguments; syntax errors stop the reading, other errors don't.
    pub(crate) fn from_args(cx: &Ctxt, args: TokenStream) -> Self {
        let mut category = Attr::none(cx, CATEGORY);
        let mut error = Attr::none(cx, ERROR);
        let mut snapshot_every = Attr::none(cx, SNAPSHOT_EVERY);
        let mut snapshot_version = Attr::none(cx, SNAPSHOT_VERSION);
        let mut vis = Attr::none(cx, VIS);
        let mut krate = Attr::none(cx, CRATE);
        let mut malformed = Vec::new();
        let parser = syn::meta::parser(|meta| {
            if meta.path == CATEGORY {
                match parse_value(cx, &meta, Kind::Str)? {
                    Some(v) => category.set(&meta.path, v),
                    None => malformed.push(CATEGORY),
                }
            } else if meta.path == ERROR {
                match parse_value(cx, &meta, Kind::Type)? {
                    Some(v) => error.set(&meta.path, v),
                    None => malformed.push(ERROR),
                }
            } else if meta.path == SNAPSHOT_EVERY {
                match parse_num(cx, &meta)? {
                    Some(v) => snapshot_every.set(&meta.path, v),
                    None => malformed.push(SNAPSHOT_EVERY),
                }
            } else if meta.path == SNAPSHOT_VERSION {
                match parse_num(cx, &meta)? {
                    Some(v) => snapshot_version.set(&meta.path, v),
                    None => malformed.push(SNAPSHOT_VERSION),
                }
            } else if meta.path == VIS {
                let lit: LitStr = meta.value()?.parse()?;
                vis.set(&meta.path, lit.parse()?);
            } else if meta.path == CRATE {
                krate.set(&meta.path, parse_path(&meta)?);
            } else {
                let msg = format!("expected one of {CONTAINER_OPTIONS}");
                unknown(cx, &meta, "`#[aggregate]` option", &msg)?;
            }
            Ok(())
        });
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        Container {
            category: category.get(),
            error: error.get(),
            snapshot_every: snapshot_every.get(),
            snapshot_version: snapshot_version.get(),
            vis: vis
                .get()
                .map_or_else(|| syn::parse_quote!(pub), |v| v.value),
            krate: krate
                .get()
                .map_or_else(|| syn::parse_quote!(::recount), |v| v.value),
            malformed,
        }
    }
}

/// The options of one `#[event(...)]`.
#[derive(Debug, Default)]
pub(crate) struct Event {
    /// `name = "story.created"`: the stable event type string.
    pub(crate) name: Option<LitStr>,
    /// `version = N`: the current schema version (default 1).
    pub(crate) version: Option<Num<u32>>,
    /// `upcast(from = N, with = path)`, in the order written.
    pub(crate) upcasts: Vec<Upcast>,
    /// `version` was written with a value of the wrong kind (already reported).
    pub(crate) version_malformed: bool,
}

/// One step of an upcaster chain: `upcast(from = N, with = path)`.
#[derive(Debug)]
pub(crate) struct Upcast {
    /// The `upcast` keyword, for errors about the whole step.
    pub(crate) keyword: syn::Path,
    /// The version the step reads.
    pub(crate) from: Num<u32>,
    /// The function: `fn(Value) -> Result<Value, String>` (or returning `Value`).
    pub(crate) with: syn::Path,
}

impl Event {
    /// Reads `#[event]` or `#[event(...)]`.
    pub(crate) fn from_attr(cx: &Ctxt, attr: &syn::Attribute) -> Self {
        let mut name = Attr::none(cx, NAME);
        let mut version = Attr::none(cx, VERSION);
        let mut upcasts = Vec::new();
        let mut version_malformed = false;
        if let syn::Meta::Path(_) = attr.meta {
            return Event::default();
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path == NAME {
                if let Some(v) = parse_value(cx, &meta, Kind::Str)? {
                    name.set(&meta.path, v);
                }
            } else if meta.path == VERSION {
                match parse_num(cx, &meta)? {
                    Some(v) => version.set(&meta.path, v),
                    None => version_malformed = true,
                }
            } else if meta.path == UPCAST {
                if let Some(step) = Upcast::parse(cx, &meta)? {
                    upcasts.push(step);
                }
            } else {
                let msg = "expected one of `name`, `version`, `upcast`";
                unknown(cx, &meta, "`#[event]` option", msg)?;
            }
            Ok(())
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
        Event {
            name: name.get().map(|n| n.value),
            version: version.get().map(|v| v.value),
            upcasts,
            version_malformed,
        }
    }
}

impl Upcast {
    /// Reads the inside of `upcast(...)`; both parts are required.
    fn parse(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Self>> {
        let mut from = Attr::none(cx, FROM);
        let mut with = Attr::none(cx, WITH);
        let mut malformed = false;
        meta.parse_nested_meta(|inner| {
            if inner.path == FROM {
                match parse_num(cx, &inner)? {
                    Some(v) => from.set(&inner.path, v),
                    None => malformed = true,
                }
            } else if inner.path == WITH {
                match parse_value(cx, &inner, Kind::Path)? {
                    Some(v) => with.set(&inner.path, v),
                    None => malformed = true,
                }
            } else {
                unknown(cx, &inner, "`upcast` option", "expected `from` or `with`")?;
            }
            Ok(())
        })?;
        match (from.get(), with.get()) {
            (Some(from), Some(with)) => Ok(Some(Upcast {
                keyword: meta.path.clone(),
                from: from.value,
                with: with.value,
            })),
            // A part with a bad value is reported already; not also as missing.
            _ if malformed => Ok(None),
            _ => {
                let msg = "`upcast` needs both `from = <version>` and `with = <function>`";
                cx.error_spanned_by(&meta.path, msg);
                Ok(None)
            }
        }
    }
}

/// `name = 123`, parsed into `T`. A value that is not an integer literal, or out of range, is
/// reported and gives `None` (see [`parse_value`]).
fn parse_num<T>(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Num<T>>>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(lit) = parse_value::<LitInt>(cx, meta, Kind::Int)? else {
        return Ok(None);
    };
    match lit.base10_parse() {
        Ok(value) => Ok(Some(Num { value, lit })),
        Err(e) => {
            cx.syn_error(e);
            Ok(None)
        }
    }
}

/// What kind of value an option takes, for the message when it gets another.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Type,
    Path,
}

/// Reads `= value` as `T`. A value of another kind (`category = account`) is one error,
/// spanned on the value and saying what the option takes; its tokens are skipped and `None`
/// returned, so the options after it are still read and this one is not also "missing".
fn parse_value<T: syn::parse::Parse>(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    kind: Kind,
) -> syn::Result<Option<T>> {
    let value = meta.value()?;
    if value.fork().parse::<T>().is_ok() {
        return value.parse().map(Some);
    }
    let mut tokens = TokenStream::new();
    while !value.is_empty() && !value.peek(Token![,]) {
        tokens.extend([value.parse::<proc_macro2::TokenTree>()?]);
    }
    let name = meta.path.to_token_stream().to_string().replace(' ', "");
    let text = tokens.to_string();
    let bare = text.trim_matches('"');
    let msg = match kind {
        Kind::Str => format!("`{name}` takes a string literal: `{name} = \"{bare}\"`"),
        Kind::Int => format!("`{name}` takes an integer literal: `{name} = {bare}`"),
        Kind::Type => format!("`{name}` takes a type: `{name} = StoryError`"),
        Kind::Path => format!("`{name}` takes a function's path: `{name} = story_v1_to_v2`"),
    };
    if tokens.is_empty() {
        cx.error_spanned_by(&meta.path, msg);
    } else {
        cx.error_spanned_by(tokens, msg);
    }
    Ok(None)
}

/// `crate = "::path"` or `crate = ::path`.
fn parse_path(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        value.parse::<LitStr>()?.parse()
    } else {
        syn::Path::parse_mod_style(value)
    }
}

/// Reports an unknown option and skips its value, so the options after it are still read.
fn unknown(cx: &Ctxt, meta: &ParseNestedMeta<'_>, what: &str, expected: &str) -> syn::Result<()> {
    let name = meta.path.to_token_stream().to_string().replace(' ', "");
    cx.error_spanned_by(&meta.path, format!("unknown {what} `{name}`, {expected}"));
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}
