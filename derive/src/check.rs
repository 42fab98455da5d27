//! The rules an `#[aggregate]` impl block must follow, one function per rule. Every error is
//! spanned on the tokens that break the rule; all are recorded, none stops the others.

use crate::ast::{self, Container, EventFn};
use crate::ctxt::Ctxt;
use crate::owned;
use crate::symbol::{CATEGORY, ERROR, SNAPSHOT_EVERY};
use proc_macro2::Span;
use quote::{quote, ToTokens};
use std::collections::HashMap;
use syn::{FnArg, ReturnType};

/// The longest event type a store accepts (`recount::MAX_EVENT_TYPE_LEN`).
const MAX_EVENT_TYPE_LEN: usize = 200;

/// Runs every rule on the model.
pub(crate) fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_not_trait_impl(cx, cont);
    check_not_generic_impl(cx, cont);
    check_self_type(cx, cont);
    check_required_options(cx, cont);
    check_category(cx, cont);
    check_snapshot_options(cx, cont);
    check_has_events(cx, cont);
    check_no_macros(cx, cont);
    check_event_attr_placement(cx, cont);
    for event in &cont.events {
        check_receiver(cx, event);
        check_method_not_generic(cx, event);
        check_not_async(cx, event);
        check_plain_fn(cx, event);
        check_no_return_type(cx, event);
        check_plain_params(cx, event);
        check_owned_params(cx, event);
        check_no_self_in_params(cx, event);
        check_supported_attrs(cx, event);
        check_version(cx, event);
        check_upcasts(cx, event);
        check_upcast_chain_complete(cx, event);
        check_event_name(cx, event);
    }
    check_unique_event_names(cx, cont);
    check_unique_variants(cx, cont);
}

/// The macro implements traits for the struct itself; inside a trait impl the event methods
/// would have to be trait items, which they cannot be.
fn check_not_trait_impl(cx: &Ctxt, cont: &Container<'_>) {
    if let Some((bang, path, for_token)) = &cont.original.trait_ {
        cx.error_spanned_by(
            quote!(#bang #path #for_token),
            "`#[aggregate]` cannot be used on trait impl blocks, only on `impl Struct { ... }`",
        );
    }
}

/// The generated event enum and trait impls name one concrete type; an aggregate is loaded
/// by category, which a generic type cannot give per instantiation.
fn check_not_generic_impl(cx: &Ctxt, cont: &Container<'_>) {
    let generics = &cont.original.generics;
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            "`#[aggregate]` cannot be used with lifetime parameters or generics",
        );
    } else if let Some(where_clause) = &generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            "`#[aggregate]` cannot be used with a `where` clause",
        );
    }
}

/// The enum is named after the struct (`Story` -> `StoryEvent`), so the self type must be a
/// plain name. A generic impl already has its own error.
fn check_self_type(cx: &Ctxt, cont: &Container<'_>) {
    if cont.ident.is_none() && cont.original.generics.params.is_empty() {
        cx.error_spanned_by(
            &cont.original.self_ty,
            "`#[aggregate]` needs the struct's plain name here, like `impl Story`",
        );
    }
}

/// Without a category there is no stream to load; without an error type no commands.
fn check_required_options(cx: &Ctxt, cont: &Container<'_>) {
    let missing = |what: &str| {
        let msg = format!("missing required option {what}");
        if cont.args.is_empty() {
            cx.error_spanned_by(&cont.original.self_ty, msg);
        } else {
            cx.error_spanned_by(&cont.args, msg);
        }
    };
    // An option written with a bad value is reported as that, not also as missing.
    let given = |name| cont.attrs.malformed.contains(&name);
    if cont.attrs.category.is_none() && !given(CATEGORY) {
        missing("`category`, the stream category: `category = \"story\"`");
    }
    if cont.attrs.error.is_none() && !given(ERROR) {
        missing("`error`, the commands' error type: `error = StoryError`");
    }
}

/// Stream ids are `<category>-<id>`; a category the store would reject at run time is better
/// rejected here.
fn check_category(cx: &Ctxt, cont: &Container<'_>) {
    let Some(category) = &cont.attrs.category else {
        return;
    };
    let lit = &category.value;
    let value = lit.value();
    if value.is_empty() {
        cx.error_spanned_by(lit, "`category` cannot be empty");
    } else if value.contains('-') {
        cx.error_spanned_by(
            lit,
            "`category` cannot contain `-`: stream ids are `<category>-<id>`",
        );
    } else if value.chars().any(char::is_control) {
        cx.error_spanned_by(lit, "`category` cannot contain control characters");
    }
}

/// A snapshot every 0 events never happens, a snapshot version 0 is not a version, and a
/// snapshot version without snapshots is a typo or a leftover.
fn check_snapshot_options(cx: &Ctxt, cont: &Container<'_>) {
    let attrs = &cont.attrs;
    if let Some(every) = &attrs.snapshot_every {
        if every.value.value == 0 {
            cx.error_spanned_by(&every.value.lit, "`snapshot_every` must be at least 1");
        }
    }
    if let Some(version) = &attrs.snapshot_version {
        if version.value.value == 0 {
            cx.error_spanned_by(&version.value.lit, "snapshot versions start at 1");
        }
        if attrs.snapshot_every.is_none() && !attrs.malformed.contains(&SNAPSHOT_EVERY) {
            cx.syn_error(syn::Error::new(
                version.name_span,
                "`snapshot_version` needs `snapshot_every`: snapshots are off without it",
            ));
        }
    }
}

/// An aggregate without events can never change state; most likely `#[event]` was forgotten.
fn check_has_events(cx: &Ctxt, cont: &Container<'_>) {
    if cont.events.is_empty() {
        cx.error_spanned_by(
            &cont.original.self_ty,
            "`#[aggregate]` needs at least one `#[event]` method",
        );
    }
}

/// A macro in the block may expand to event methods the attribute cannot see.
fn check_no_macros(cx: &Ctxt, cont: &Container<'_>) {
    for mac in &cont.macros {
        cx.error_spanned_by(
            mac,
            "macro invocations are not supported inside an `#[aggregate]` impl block: events must be written out",
        );
    }
}

/// `#[event]` means something only on a method, and only once.
fn check_event_attr_placement(cx: &Ctxt, cont: &Container<'_>) {
    for attr in &cont.misplaced {
        cx.error_spanned_by(attr, "`#[event]` can only be used on methods");
    }
    for event in &cont.events {
        for attr in &event.extra_event_attrs {
            cx.error_spanned_by(
                attr,
                format!("duplicate `#[event]` attribute on `{}`", event.method()),
            );
        }
    }
}

/// The body becomes an arm of `Aggregate::apply(&mut self, ..)`: it must expect exactly that
/// receiver.
fn check_receiver(cx: &Ctxt, event: &EventFn<'_>) {
    let sig = &event.original.sig;
    let msg = format!(
        "event method `{}` must take `&mut self`: it changes the state",
        sig.ident
    );
    match sig.inputs.first() {
        Some(FnArg::Receiver(r))
            if r.reference.is_some() && r.mutability.is_some() && r.colon_token.is_none() => {}
        Some(FnArg::Receiver(r)) => cx.error_spanned_by(r, msg),
        _ => cx.syn_error(syn::Error::new(sig.paren_token.span.join(), msg)),
    }
}

/// Each parameter becomes a field of a concrete enum variant; there is nothing to
/// instantiate a type parameter with.
fn check_method_not_generic(cx: &Ctxt, event: &EventFn<'_>) {
    let generics = &event.original.sig.generics;
    let msg = "event methods cannot be generic: their parameters become the event's fields";
    if !generics.params.is_empty() {
        cx.error_spanned_by(generics, msg);
    } else if let Some(where_clause) = &generics.where_clause {
        cx.error_spanned_by(where_clause, msg);
    }
}

/// Applying an event is synchronous and pure: replay cannot await.
fn check_not_async(cx: &Ctxt, event: &EventFn<'_>) {
    if let Some(asyncness) = &event.original.sig.asyncness {
        cx.error_spanned_by(
            asyncness,
            "event methods cannot be `async`: applying an event is synchronous",
        );
    }
}

/// The body is moved into `apply`, which is neither `const`, `unsafe` nor `extern`.
fn check_plain_fn(cx: &Ctxt, event: &EventFn<'_>) {
    let sig = &event.original.sig;
    let qualifier = sig
        .constness
        .as_ref()
        .map(|t| (t.to_token_stream(), "const"));
    let qualifier = qualifier.or_else(|| {
        sig.unsafety
            .as_ref()
            .map(|t| (t.to_token_stream(), "unsafe"))
    });
    let qualifier = qualifier.or_else(|| sig.abi.as_ref().map(|t| (t.to_token_stream(), "extern")));
    if let Some((tokens, word)) = qualifier {
        cx.error_spanned_by(tokens, format!("event methods cannot be `{word}`"));
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "event methods cannot be variadic");
    }
}

/// Applying an event cannot fail or return anything: the event already happened.
fn check_no_return_type(cx: &Ctxt, event: &EventFn<'_>) {
    if let ReturnType::Type(..) = &event.original.sig.output {
        cx.error_spanned_by(
            &event.original.sig.output,
            "event methods cannot return a value: an event that happened is applied, it cannot fail",
        );
    }
}

/// Each parameter's name becomes a field name of the variant and a key in the stored JSON.
fn check_plain_params(cx: &Ctxt, event: &EventFn<'_>) {
    for field in &event.fields {
        if field.ident.is_none() {
            cx.error_spanned_by(
                &field.original.pat,
                "event parameters must be plain names: each becomes a field of the event",
            );
        }
    }
}

/// Each parameter becomes a field of the event, which is stored and replayed long after the
/// call: it cannot borrow. Said once, with the owned type to use, instead of the compiler's
/// lifetime errors on the generated enum.
fn check_owned_params(cx: &Ctxt, event: &EventFn<'_>) {
    for field in &event.fields {
        if owned::borrows(field.ty) {
            cx.error_spanned_by(
                field.ty,
                format!(
                    "event fields are owned data: an event is stored and replayed, so it cannot \
                     borrow; use `{}` instead of `{}`",
                    owned::display(&owned::owned(field.ty, false)),
                    owned::display(field.ty)
                ),
            );
        }
    }
}

/// The parameter types move into the event enum, where `Self` would mean the enum.
fn check_no_self_in_params(cx: &Ctxt, event: &EventFn<'_>) {
    for field in &event.fields {
        if ast::mentions(
            field.ty.to_token_stream(),
            &syn::Ident::new("Self", Span::call_site()),
        ) {
            cx.error_spanned_by(
                field.ty,
                "event parameter types cannot use `Self`: the type moves into the event enum; name the struct instead",
            );
        }
    }
}

/// Attributes are moved onto generated items; only those that mean something there are kept.
fn check_supported_attrs(cx: &Ctxt, event: &EventFn<'_>) {
    for attr in &event.other_attrs {
        cx.error_spanned_by(
            attr,
            "unsupported attribute on an event method: only `doc`, `cfg` and lint attributes are kept",
        );
    }
    for attr in event.fields.iter().flat_map(|f| &f.other_attrs) {
        cx.error_spanned_by(
            attr,
            "unsupported attribute on an event parameter: only `serde` and `doc` are kept",
        );
    }
}

/// Stores reject schema version 0: versions count from 1.
fn check_version(cx: &Ctxt, event: &EventFn<'_>) {
    if let Some(version) = &event.attrs.version {
        if version.value == 0 {
            cx.error_spanned_by(&version.lit, "event versions start at 1");
        }
    }
}

/// An upcaster reads an older version; one from the current version or later would never
/// run, and two from the same version would leave the chain ambiguous.
fn check_upcasts(cx: &Ctxt, event: &EventFn<'_>) {
    if event.attrs.version_malformed {
        return;
    }
    let version = event.version();
    let mut seen = HashMap::new();
    for step in &event.attrs.upcasts {
        let from = step.from.value;
        if from == 0 {
            cx.error_spanned_by(&step.from.lit, "event versions start at 1");
        } else if from >= version {
            cx.error_spanned_by(
                &step.from.lit,
                format!("upcaster from version {from} is not below the event's version {version}"),
            );
        } else if seen.insert(from, ()).is_some() {
            cx.error_spanned_by(
                &step.keyword,
                format!("duplicate upcaster from version {from}"),
            );
        }
    }
}

/// A stored payload of any older version must decode: a chain with a missing step compiles
/// today and fails on the first replay of an old event, perhaps years later. Steps with
/// errors of their own are left to `check_upcasts`, so one mistake gives one error.
fn check_upcast_chain_complete(cx: &Ctxt, event: &EventFn<'_>) {
    let Some(version) = &event.attrs.version else {
        return;
    };
    let current = version.value;
    let steps: Vec<u32> = event.attrs.upcasts.iter().map(|u| u.from.value).collect();
    let mut seen = steps.clone();
    seen.sort_unstable();
    seen.dedup();
    let steps_ok = seen.len() == steps.len() && steps.iter().all(|f| (1..current).contains(f));
    if current <= 1 || !steps_ok {
        return;
    }
    let missing: Vec<u32> = (1..current).filter(|v| !steps.contains(v)).collect();
    let Some(&first) = missing.first() else {
        return;
    };
    let method = event.method();
    let shown: Vec<String> = missing
        .iter()
        .take(3)
        .map(|v| format!("`upcast(from = {v}, with = ...)`"))
        .collect();
    let more = match missing.len() {
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    let versions = if missing.len() == 1 {
        format!("version {first}")
    } else {
        format!("versions {}", join_versions(&missing))
    };
    cx.error_spanned_by(
        &version.lit,
        format!(
            "`{method}` is at version {current}, but no upcaster reads {versions}: stored events of \
             that version could not be read; add {}{more}",
            shown.join(", ")
        ),
    );
}

/// `1, 2 and 5`, or `1 to 40` for a long run.
fn join_versions(versions: &[u32]) -> String {
    let (first, last) = (versions[0], versions[versions.len() - 1]);
    if versions.len() > 3 && last - first + 1 == versions.len() as u32 {
        return format!("{first} to {last}");
    }
    let (last, rest) = versions.split_last().expect("at least two versions");
    let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
    format!("{} and {last}", rest.join(", "))
}

/// A store rejects an event type that is empty, longer than 200 bytes, or holds whitespace
/// or control characters (`recount::check_event_type`); better at compile time than at run
/// time.
fn check_event_name(cx: &Ctxt, event: &EventFn<'_>) {
    let Some(lit) = &event.attrs.name else { return };
    let name = lit.value();
    if name.is_empty() {
        cx.error_spanned_by(lit, "event names cannot be empty");
    } else if name.len() > MAX_EVENT_TYPE_LEN {
        cx.error_spanned_by(
            lit,
            format!("event name is longer than {MAX_EVENT_TYPE_LEN} bytes"),
        );
    } else if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        cx.error_spanned_by(
            lit,
            format!(
                "event names cannot contain whitespace or control characters, found {c:?}: \
                 stores refuse such an event type"
            ),
        );
    }
}

/// The event type string is the stored identity: two events with one name could not be told
/// apart when read back.
fn check_unique_event_names(cx: &Ctxt, cont: &Container<'_>) {
    let Some(category) = &cont.attrs.category else {
        return;
    };
    let category = category.value.value();
    let mut seen: HashMap<String, &EventFn<'_>> = HashMap::new();
    for event in &cont.events {
        let name = event.event_type(&category);
        if let Some(first) = seen.get(&name) {
            let msg = format!(
                "duplicate event name `{name}`, first used by `{}`",
                first.method()
            );
            match &event.attrs.name {
                Some(lit) => cx.error_spanned_by(lit, msg),
                None => cx.error_spanned_by(event.method(), msg),
            }
        } else {
            seen.insert(name, event);
        }
    }
}

/// Two methods whose names differ only in underscores map to one variant name.
fn check_unique_variants(cx: &Ctxt, cont: &Container<'_>) {
    let mut seen: HashMap<String, &EventFn<'_>> = HashMap::new();
    for event in &cont.events {
        let variant = event.variant.to_string();
        if let Some(first) = seen.get(&variant) {
            cx.error_spanned_by(
                event.method(),
                format!(
                    "event method `{}` maps to variant `{variant}`, already used by `{}`",
                    event.method(),
                    first.method()
                ),
            );
        } else {
            seen.insert(variant, event);
        }
    }
}
