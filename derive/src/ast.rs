//! The macro's model of the annotated impl block: the container, its event methods and their
//! fields, each keeping a reference to the original tokens for spans. Building the model never
//! fails; what is wrong with it is found by `check`.

use crate::attr;
use crate::ctxt::Ctxt;
use crate::symbol::*;
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, Type};

/// The annotated impl block.
#[derive(Debug)]
pub(crate) struct Container<'a> {
    /// The impl block as written.
    pub(crate) original: &'a ItemImpl,
    /// The attribute's arguments as written (for "missing option" spans).
    pub(crate) args: TokenStream,
    /// The struct's name, when the self type is a plain name.
    pub(crate) ident: Option<&'a Ident>,
    /// The `#[aggregate(...)]` options.
    pub(crate) attrs: attr::Container,
    /// The `#[event]` methods, in order.
    pub(crate) events: Vec<EventFn<'a>>,
    /// Macro invocations among the items (their expansion cannot be seen).
    pub(crate) macros: Vec<&'a syn::ImplItemMacro>,
    /// `#[event]` attributes on items that are not methods.
    pub(crate) misplaced: Vec<&'a Attribute>,
}

/// One `#[event]` method.
#[derive(Debug)]
pub(crate) struct EventFn<'a> {
    /// The method as written.
    pub(crate) original: &'a ImplItemFn,
    /// The `#[event]` options.
    pub(crate) attrs: attr::Event,
    /// Further `#[event]` attributes on the same method (an error).
    pub(crate) extra_event_attrs: Vec<&'a Attribute>,
    /// The variant name: the method name in UpperCamelCase, spanned on the method name.
    pub(crate) variant: Ident,
    /// `#[doc]` attributes, carried to the variant.
    pub(crate) docs: Vec<&'a Attribute>,
    /// `#[cfg]` attributes, carried to everything generated from this method.
    pub(crate) cfgs: Vec<&'a Attribute>,
    /// Lint attributes (`allow`, `expect`, `warn`, `deny`), carried to the apply arm.
    pub(crate) lints: Vec<&'a Attribute>,
    /// Any other attribute (an error).
    pub(crate) other_attrs: Vec<&'a Attribute>,
    /// The typed parameters after the receiver.
    pub(crate) fields: Vec<Field<'a>>,
}

/// One parameter of an event method: a field of its variant.
#[derive(Debug)]
pub(crate) struct Field<'a> {
    /// The parameter as written.
    pub(crate) original: &'a syn::PatType,
    /// The name, when the pattern is a plain (possibly `mut`) name.
    pub(crate) ident: Option<&'a Ident>,
    /// Whether the name is bound `mut`.
    pub(crate) mutable: bool,
    /// The type.
    pub(crate) ty: &'a Type,
    /// Whether the method body names the parameter (else apply marks it used itself).
    pub(crate) used: bool,
    /// `#[serde]` and `#[doc]` attributes, carried to the field.
    pub(crate) attrs: Vec<&'a Attribute>,
    /// Any other attribute (an error).
    pub(crate) other_attrs: Vec<&'a Attribute>,
}

impl<'a> Container<'a> {
    /// Builds the model, recording option errors in `cx`.
    pub(crate) fn from_ast(cx: &Ctxt, args: TokenStream, item: &'a ItemImpl) -> Self {
        let attrs = attr::Container::from_args(cx, args.clone());
        let mut events = Vec::new();
        let mut macros = Vec::new();
        let mut misplaced = Vec::new();
        for impl_item in &item.items {
            match impl_item {
                ImplItem::Fn(f) => events.extend(EventFn::from_ast(cx, f)),
                ImplItem::Macro(m) => macros.push(m),
                other => misplaced.extend(item_attrs(other).iter().filter(|a| is_event(a))),
            }
        }
        Container {
            original: item,
            args,
            ident: self_ident(&item.self_ty),
            attrs,
            events,
            macros,
            misplaced,
        }
    }
}

impl<'a> EventFn<'a> {
    /// The event method's model, or `None` for a method without `#[event]`.
    fn from_ast(cx: &Ctxt, original: &'a ImplItemFn) -> Option<Self> {
        let mut event_attrs = original.attrs.iter().filter(|a| is_event(a));
        let event_attr = event_attrs.next()?;
        let (mut docs, mut cfgs, mut lints, mut other_attrs) = (vec![], vec![], vec![], vec![]);
        for a in original.attrs.iter().filter(|a| !is_event(a)) {
            let path = a.path();
            if path == DOC {
                docs.push(a);
            } else if path == CFG {
                cfgs.push(a);
            } else if path == ALLOW || path == EXPECT || path == WARN || path == DENY {
                lints.push(a);
            } else {
                other_attrs.push(a);
            }
        }
        let body = original.block.to_token_stream();
        let fields = original
            .sig
            .inputs
            .iter()
            .filter_map(|arg| Field::from_ast(arg, &body))
            .collect();
        Some(EventFn {
            original,
            attrs: attr::Event::from_attr(cx, event_attr),
            extra_event_attrs: event_attrs.collect(),
            variant: variant_name(&original.sig.ident),
            docs,
            cfgs,
            lints,
            other_attrs,
            fields,
        })
    }

    /// The method's name.
    pub(crate) fn method(&self) -> &'a Ident {
        &self.original.sig.ident
    }

    /// The stable event type string: `name = ...`, or `<category>.<method>`.
    pub(crate) fn event_type(&self, category: &str) -> String {
        match &self.attrs.name {
            Some(name) => name.value(),
            None => {
                let method = self.method().to_string();
                format!(
                    "{category}.{}",
                    method.strip_prefix("r#").unwrap_or(&method)
                )
            }
        }
    }

    /// The current schema version (default 1).
    pub(crate) fn version(&self) -> u32 {
        self.attrs.version.as_ref().map_or(1, |v| v.value)
    }
}

impl<'a> Field<'a> {
    fn from_ast(arg: &'a FnArg, body: &TokenStream) -> Option<Self> {
        let FnArg::Typed(original) = arg else {
            return None;
        };
        let (ident, mutable) = match &*original.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                (Some(&p.ident), p.mutability.is_some())
            }
            _ => (None, false),
        };
        let (attrs, other_attrs) = original
            .attrs
            .iter()
            .partition(|a| a.path() == SERDE || a.path() == DOC);
        let used = ident.is_some_and(|i| mentions(body.clone(), i));
        Some(Field {
            original,
            ident,
            mutable,
            ty: &original.ty,
            used,
            attrs,
            other_attrs,
        })
    }
}

/// Whether `attr` is `#[event]` or `#[event(...)]`.
pub(crate) fn is_event(attr: &Attribute) -> bool {
    attr.path() == EVENT
}

/// Whether `ident` occurs anywhere in `tokens` (a use, or a shadowing binding: either way the
/// parameter needs no help against the unused-variable lint).
pub(crate) fn mentions(tokens: TokenStream, ident: &Ident) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(g) => mentions(g.stream(), ident),
        _ => false,
    })
}

/// The struct name of `impl Name`, if the self type is just a name.
fn self_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let seg = p.path.segments.last()?;
            let plain = p.path.segments.len() == 1 && p.path.leading_colon.is_none();
            (plain && seg.arguments.is_none()).then_some(&seg.ident)
        }
        _ => None,
    }
}

fn item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(c) => &c.attrs,
        ImplItem::Type(t) => &t.attrs,
        ImplItem::Fn(f) => &f.attrs,
        ImplItem::Macro(m) => &m.attrs,
        _ => &[],
    }
}

/// `published_v2` -> `PublishedV2`, spanned on the method name so errors about the variant
/// point at it.
fn variant_name(method: &Ident) -> Ident {
    let name = method.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let camel: String = name
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
        })
        .collect();
    match camel.chars().next() {
        Some(c) if !c.is_ascii_digit() => Ident::new(&camel, method.span()),
        Some(_) => Ident::new(&format!("_{camel}"), method.span()),
        None => Ident::new("Event", method.span()),
    }
}

#[cfg(test)]
mod tests {
    use super::variant_name;
    use proc_macro2::Span;
    use syn::Ident;

    #[test]
    fn variant_names_are_upper_camel_case() {
        for (method, variant) in [
            ("created", "Created"),
            ("chapter_added", "ChapterAdded"),
            ("v2_x", "V2X"),
        ] {
            assert_eq!(
                variant_name(&Ident::new(method, Span::call_site())),
                variant
            );
        }
        assert_eq!(
            variant_name(&Ident::new_raw("type", Span::call_site())),
            "Type"
        );
    }
}
