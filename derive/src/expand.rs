//! Writes the code: the impl block without its event methods, the event enum, and (hidden in
//! `const _: () = { ... };`) the payload structs, the upcaster shims and the `Event` and
//! `Aggregate` impls. Everything is named absolutely, so the user's module may shadow any
//! prelude name.

use crate::ast::{self, Container, EventFn, Field};
use crate::{check, ctxt::Ctxt, fingerprint::fingerprint};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, ImplItem, ItemImpl};

/// Expands `#[aggregate(args)] item`. On errors: every error as `compile_error!`, plus the
/// impl block as written minus `#[event]` attributes, so the rest of the crate still sees the
/// struct's methods and the errors are the only ones reported.
pub(crate) fn aggregate(args: TokenStream, item: TokenStream) -> TokenStream {
    let item: ItemImpl = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Impl(item)) => item,
        Ok(other) => {
            let msg =
                "`#[aggregate]` goes on the struct's inherent impl block: `impl Story { ... }`";
            let error = syn::Error::new_spanned(item_head(&other), msg).to_compile_error();
            return quote!(#error #item);
        }
        Err(err) => {
            let error = err.to_compile_error();
            return quote!(#error #item);
        }
    };
    let cx = Ctxt::new();
    let cont = Container::from_ast(&cx, args, &item);
    check::check(&cx, &cont);
    match cx.check() {
        Ok(()) => expand(&Names::new(&cont), &cont),
        Err(err) => {
            let errors = err.to_compile_error();
            let original = without_event_attrs(&item);
            let stub = fallback_enum(&cont);
            quote!(#errors #original #stub)
        }
    }
}

/// After an error, the event enum as far as it can be read (no serde, no trait impls), so
/// commands naming `StoryEvent::...` do not add errors of their own to the real ones.
fn fallback_enum(cont: &Container<'_>) -> Option<TokenStream> {
    let event = format_ident!("{}Event", cont.ident?);
    let vis = &cont.attrs.vis;
    let mut seen = std::collections::HashSet::new();
    let variants = cont
        .events
        .iter()
        .filter(|e| seen.insert(e.variant.to_string()))
        .map(|e| {
            let (cfgs, variant) = (&e.cfgs, &e.variant);
            let fields = e.fields.iter().filter_map(|f| {
                // A borrowed field is reported already; its owned type keeps the enum
                // free of lifetime errors of its own.
                let (name, ty) = (f.ident?, crate::owned::owned(f.ty, true));
                Some(quote!(#name: #ty))
            });
            let body = (!e.fields.is_empty()).then(|| quote!({ #(#fields,)* }));
            quote!(#(#cfgs)* #variant #body)
        });
    Some(quote! {
        #[allow(missing_docs, dead_code)]
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::cmp::PartialEq)]
        #vis enum #event {
            #(#variants,)*
        }
    })
}

/// The tokens to point at when the item is not an impl block: its head, not its whole body.
fn item_head(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Struct(s) => {
            let (vis, token, ident) = (&s.vis, &s.struct_token, &s.ident);
            quote!(#vis #token #ident)
        }
        syn::Item::Enum(e) => {
            let (vis, token, ident) = (&e.vis, &e.enum_token, &e.ident);
            quote!(#vis #token #ident)
        }
        syn::Item::Fn(f) => {
            let sig = &f.sig;
            quote!(#sig)
        }
        other => quote!(#other),
    }
}

/// Names used throughout the expansion, from a container that passed `check`.
struct Names<'a> {
    krate: &'a syn::Path,
    ident: &'a Ident,
    event: Ident,
    category: String,
    /// For `#[serde(crate = "...")]`.
    serde_crate: String,
}

impl<'a> Names<'a> {
    fn new(cont: &'a Container<'a>) -> Self {
        let ident = cont.ident.expect("checked: plain self type");
        let krate = &cont.attrs.krate;
        let category = cont
            .attrs
            .category
            .as_ref()
            .expect("checked: category")
            .value
            .value();
        let serde_crate = quote!(#krate::__private::serde)
            .to_string()
            .replace(' ', "");
        Names {
            krate,
            ident,
            event: format_ident!("{}Event", ident),
            category,
            serde_crate,
        }
    }
}

fn expand(names: &Names<'_>, cont: &Container<'_>) -> TokenStream {
    let commands = without_event_methods(cont.original);
    let event_enum = event_enum(names, cont);
    let structs = cont.events.iter().map(|e| payload_structs(names, e));
    let upcasters = cont.events.iter().map(|e| upcaster_shims(names, e));
    let event_impl = event_impl(names, cont);
    let aggregate_impl = aggregate_impl(names, cont);
    quote! {
        #commands

        #event_enum

        const _: () = {
            #(#structs)*
            #(#upcasters)*
            #event_impl
            #aggregate_impl
        };
    }
}

/// The impl block as written, minus the event methods: they live on as `apply`'s arms only.
fn without_event_methods(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    item.items
        .retain(|i| !matches!(i, ImplItem::Fn(f) if f.attrs.iter().any(ast::is_event)));
    item
}

/// The impl block as written, minus `#[event]` attributes (which would not resolve).
fn without_event_attrs(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for i in &mut item.items {
        match i {
            ImplItem::Fn(f) => f.attrs.retain(|a| !ast::is_event(a)),
            ImplItem::Const(c) => c.attrs.retain(|a| !ast::is_event(a)),
            ImplItem::Type(t) => t.attrs.retain(|a| !ast::is_event(a)),
            ImplItem::Macro(m) => m.attrs.retain(|a| !ast::is_event(a)),
            _ => {}
        }
    }
    item
}

fn event_enum(names: &Names<'_>, cont: &Container<'_>) -> TokenStream {
    let Names {
        krate,
        ident,
        event,
        serde_crate,
        ..
    } = names;
    let vis = &cont.attrs.vis;
    let doc = format!(" The events of [`{ident}`], one variant per `#[event]` method.");
    let variants = cont.events.iter().map(|e| {
        let (docs, cfgs, variant) = (&e.docs, &e.cfgs, &e.variant);
        let fields = e.fields.iter().map(|f| {
            let (attrs, name, ty) = (&f.attrs, field_ident(f), f.ty);
            // A parameter has nowhere to put `///`; the variant's doc describes it.
            let allow = (!f.attrs.iter().any(|a| a.path().is_ident("doc")))
                .then(|| quote!(#[allow(missing_docs)]));
            quote!(#(#attrs)* #allow #name: #ty)
        });
        let body = (!e.fields.is_empty()).then(|| quote!({ #(#fields,)* }));
        // An undocumented event still gets a doc naming its stable identity, so rustdoc and
        // `missing_docs` are served without the user repeating what the attribute says.
        let default_doc = docs.is_empty().then(|| {
            let text = format!(
                " The `{}` event (schema version {}).",
                e.event_type(&names.category),
                e.version()
            );
            quote!(#[doc = #text])
        });
        quote!(#(#docs)* #default_doc #(#cfgs)* #variant #body)
    });
    quote! {
        #[doc = #doc]
        #[derive(
            ::core::fmt::Debug,
            ::core::clone::Clone,
            ::core::cmp::PartialEq,
            #krate::__private::serde::Serialize,
            #krate::__private::serde::Deserialize,
        )]
        #[serde(crate = #serde_crate)]
        #vis enum #event {
            #(#variants,)*
        }
    }
}

/// Per event: the payload as stored, borrowed for `encode` and owned for `decode`. Their
/// field names are the stored keys; the variant name is never written.
fn payload_structs(names: &Names<'_>, e: &EventFn<'_>) -> TokenStream {
    let Names {
        krate, serde_crate, ..
    } = names;
    let (cfgs, owned, borrowed) = (&e.cfgs, owned_struct(e), borrowed_struct(e));
    let attrs: Vec<_> = e.fields.iter().map(|f| &f.attrs).collect();
    let idents: Vec<_> = e.fields.iter().map(field_ident).collect();
    let tys: Vec<_> = e.fields.iter().map(|f| f.ty).collect();
    let lifetime = (!e.fields.is_empty()).then(|| quote!(<'__recount>));
    quote! {
        #(#cfgs)*
        #[derive(#krate::__private::serde::Serialize)]
        #[serde(crate = #serde_crate)]
        struct #borrowed #lifetime {
            #( #(#attrs)* #idents: &'__recount #tys, )*
        }

        #(#cfgs)*
        #[derive(#krate::__private::serde::Deserialize)]
        #[serde(crate = #serde_crate)]
        struct #owned {
            #( #(#attrs)* #idents: #tys, )*
        }
    }
}

/// Per upcaster: a shim with the exact `UpcastFn` signature around the user's function, which
/// may return `Result<Value, E: Display>` or a bare `Value`. The call is spanned on `with`'s
/// path, so a function of the wrong shape is reported there (`__private::Upcaster`).
fn upcaster_shims(names: &Names<'_>, e: &EventFn<'_>) -> TokenStream {
    let krate = names.krate;
    let cfgs = &e.cfgs;
    let shims = e.attrs.upcasts.iter().map(|step| {
        let shim = upcaster_shim(e, step.from.value);
        let with = &step.with;
        let private = quote_spanned!(span_of(with)=> __recount_private);
        // The function is first coerced to a fn pointer of its own signature, so a wrong
        // one is reported by `Upcaster`'s message (with the expected signature), once.
        let call = quote_spanned! {span_of(with)=>
            let step: fn(_) -> _ = #with;
            #private::upcast_with(step, value)
        };
        quote! {
            #(#cfgs)*
            fn #shim(
                value: #krate::__private::serde_json::Value,
            ) -> ::core::result::Result<#krate::__private::serde_json::Value, ::std::string::String> {
                use #krate::__private as #private;
                #call
            }
        }
    });
    quote!(#(#shims)*)
}

fn event_impl(names: &Names<'_>, cont: &Container<'_>) -> TokenStream {
    let Names {
        krate,
        event,
        category,
        ..
    } = names;
    let events = &cont.events;
    let cfgs: Vec<_> = events.iter().map(|e| &e.cfgs).collect();
    let types: Vec<_> = events.iter().map(|e| e.event_type(category)).collect();
    let versions = events.iter().map(|e| Literal::u32_unsuffixed(e.version()));
    let variants: Vec<_> = events.iter().map(|e| &e.variant).collect();
    let encode_arms = events.iter().map(|e| encode_arm(names, e));
    let decode_arms = events.iter().map(|e| decode_arm(names, e));
    quote! {
        #[automatically_derived]
        impl #krate::Event for #event {
            const EVENT_TYPES: &'static [&'static str] = &[#( #(#cfgs)* #types, )*];

            fn event_type(&self) -> &'static str {
                match self {
                    #( #(#cfgs)* Self::#variants { .. } => #types, )*
                }
            }

            fn schema_version(&self) -> u32 {
                match self {
                    #( #(#cfgs)* Self::#variants { .. } => #versions, )*
                }
            }

            fn encode(
                &self,
            ) -> ::core::result::Result<
                ::std::boxed::Box<#krate::__private::serde_json::value::RawValue>,
                #krate::__private::serde_json::Error,
            > {
                match self {
                    #(#encode_arms)*
                }
            }

            fn decode(
                event_type: &str,
                schema_version: u32,
                payload: &str,
            ) -> ::core::result::Result<Self, #krate::aggregate::DecodeError> {
                match event_type {
                    #(#decode_arms)*
                    other => ::core::result::Result::Err(
                        #krate::aggregate::DecodeError::UnknownType(::std::string::String::from(other)),
                    ),
                }
            }
        }
    }
}

fn encode_arm(names: &Names<'_>, e: &EventFn<'_>) -> TokenStream {
    let krate = names.krate;
    let (cfgs, variant, borrowed) = (&e.cfgs, &e.variant, borrowed_struct(e));
    let idents: Vec<_> = e.fields.iter().map(field_ident).collect();
    quote! {
        #(#cfgs)*
        Self::#variant { #(#idents),* } => {
            #krate::__private::serde_json::value::to_raw_value(&#borrowed { #(#idents),* })
        }
    }
}

fn decode_arm(names: &Names<'_>, e: &EventFn<'_>) -> TokenStream {
    let krate = names.krate;
    let (cfgs, variant, owned) = (&e.cfgs, &e.variant, owned_struct(e));
    let event_type = e.event_type(&names.category);
    let version = Literal::u32_unsuffixed(e.version());
    let idents: Vec<_> = e.fields.iter().map(field_ident).collect();
    let chain = e.attrs.upcasts.iter().map(|step| {
        let (from, shim) = (
            Literal::u32_unsuffixed(step.from.value),
            upcaster_shim(e, step.from.value),
        );
        quote!((#from, #shim as #krate::aggregate::UpcastFn))
    });
    quote! {
        #(#cfgs)*
        #event_type => {
            let #owned { #(#idents),* } = #krate::aggregate::decode_upcast::<#owned>(
                payload,
                schema_version,
                #version,
                &[#(#chain),*],
            )?;
            ::core::result::Result::Ok(Self::#variant { #(#idents),* })
        }
    }
}

fn aggregate_impl(names: &Names<'_>, cont: &Container<'_>) -> TokenStream {
    let Names {
        krate,
        ident,
        event,
        category,
        ..
    } = names;
    let error = &cont.attrs.error.as_ref().expect("checked: error").value;
    let arms = cont.events.iter().map(|e| apply_arm(names, e));
    let snapshots = snapshot_fns(names, cont);
    quote! {
        #[automatically_derived]
        impl #krate::Aggregate for #ident {
            const CATEGORY: &'static str = #category;
            type Event = #event;
            type Error = #error;

            fn apply(&mut self, event: #event) {
                match event {
                    #(#arms)*
                }
            }

            #snapshots
        }
    }
}

/// The event method's body, with its parameters bound by value from the variant. A field the
/// body never names is touched once first, so it is not an unused variable: events often
/// carry data the state does not keep.
fn apply_arm(names: &Names<'_>, e: &EventFn<'_>) -> TokenStream {
    let (cfgs, lints, variant, event) = (&e.cfgs, &e.lints, &e.variant, &names.event);
    let bindings = e.fields.iter().map(|f| {
        let (name, mutable) = (field_ident(f), f.mutable.then(|| quote!(mut)));
        quote!(#mutable #name)
    });
    let unused = e.fields.iter().filter(|f| !f.used).map(field_ident);
    let body = &e.original.block;
    quote! {
        #(#cfgs)*
        #(#lints)*
        #event::#variant { #(#bindings),* } => {
            #( let _ = &#unused; )*
            #body
        }
    }
}

/// Snapshot policy, tag and codec, when `snapshot_every` is set. The codec calls are spanned
/// on `snapshot_every`, so a struct that is not `Serialize + Deserialize` is reported there.
fn snapshot_fns(names: &Names<'_>, cont: &Container<'_>) -> TokenStream {
    let Some(every) = &cont.attrs.snapshot_every else {
        return TokenStream::new();
    };
    let krate = names.krate;
    let (n, span) = (Literal::u64_unsuffixed(every.value.value), every.name_span);
    let tag = snapshot_tag(cont);
    let private = quote_spanned!(span=> __recount_private);
    let encode = quote_spanned!(span=> #private::encode_snapshot::<Self>(self));
    let decode = quote_spanned!(span=> #private::decode_snapshot::<Self>(state));
    quote! {
        fn snapshot_every() -> ::core::option::Option<u64> {
            ::core::option::Option::Some(#n)
        }

        fn snapshot_tag() -> &'static str {
            #tag
        }

        fn encode_snapshot(
            &self,
        ) -> ::core::option::Option<
            ::core::result::Result<::std::string::String, #krate::__private::serde_json::Error>,
        > {
            use #krate::__private as #private;
            ::core::option::Option::Some(#encode)
        }

        fn decode_snapshot(
            state: &str,
        ) -> ::core::option::Option<::core::result::Result<Self, #krate::__private::serde_json::Error>> {
            use #krate::__private as #private;
            ::core::option::Option::Some(#decode)
        }
    }
}

/// `v<snapshot_version>-<hash of every event method's signature and body>`.
fn snapshot_tag(cont: &Container<'_>) -> String {
    let version = cont
        .attrs
        .snapshot_version
        .as_ref()
        .map_or(1, |v| v.value.value);
    let code = cont.events.iter().map(|e| {
        let (sig, block) = (&e.original.sig, &e.original.block);
        quote!(#sig #block)
    });
    format!("v{version}-{:016x}", fingerprint(quote!(#(#code)*)))
}

fn field_ident<'a>(f: &Field<'a>) -> &'a Ident {
    f.ident.expect("checked: plain parameter names")
}

fn owned_struct(e: &EventFn<'_>) -> Ident {
    format_ident!("__Recount{}", e.variant)
}

fn borrowed_struct(e: &EventFn<'_>) -> Ident {
    format_ident!("__Recount{}Ref", e.variant)
}

fn upcaster_shim(e: &EventFn<'_>, from: u32) -> Ident {
    format_ident!("__recount_upcast_{}_v{}", e.method(), from)
}

fn span_of(path: &syn::Path) -> Span {
    path.segments
        .last()
        .map_or_else(Span::call_site, |s| s.ident.span())
}
