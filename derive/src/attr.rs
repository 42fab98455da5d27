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
        let parser = syn::meta::parser(|meta| {
            if meta.path == CATEGORY {
                category.set(&meta.path, meta.value()?.parse()?);
            } else if meta.path == ERROR {
                error.set(&meta.path, meta.value()?.parse()?);
            } else if meta.path == SNAPSHOT_EVERY {
                snapshot_every.set(&meta.path, parse_num(&meta)?);
            } else if meta.path == SNAPSHOT_VERSION {
                snapshot_version.set(&meta.path, parse_num(&meta)?);
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
        if let syn::Meta::Path(_) = attr.meta {
            return Event::default();
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path == NAME {
                name.set(&meta.path, meta.value()?.parse()?);
            } else if meta.path == VERSION {
                version.set(&meta.path, parse_num(&meta)?);
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
        }
    }
}

impl Upcast {
    /// Reads the inside of `upcast(...)`; both parts are required.
    fn parse(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Self>> {
        let mut from = Attr::none(cx, FROM);
        let mut with = Attr::none(cx, WITH);
        meta.parse_nested_meta(|inner| {
            if inner.path == FROM {
                from.set(&inner.path, parse_num(&inner)?);
            } else if inner.path == WITH {
                with.set(&inner.path, inner.value()?.parse()?);
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
            _ => {
                let msg = "`upcast` needs both `from = <version>` and `with = <function>`";
                cx.error_spanned_by(&meta.path, msg);
                Ok(None)
            }
        }
    }
}

/// `name = 123`, parsed into `T` (an out-of-range or non-integer literal is an error).
fn parse_num<T>(meta: &ParseNestedMeta<'_>) -> syn::Result<Num<T>>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let lit: LitInt = meta.value()?.parse()?;
    Ok(Num {
        value: lit.base10_parse()?,
        lit,
    })
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
