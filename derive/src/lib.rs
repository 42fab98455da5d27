//! The `#[aggregate]` attribute macro of Recount. Use it through `recount::aggregate`, whose
//! documentation describes the options and shows a complete aggregate.
//!
//! Inside, the crate follows serde_derive: `attr` reads options, `ast` models the impl block,
//! `check` validates it, `expand` writes code, and `ctxt` collects every error on the way.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod fingerprint;
mod owned;
mod symbol;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Turns an inherent impl block into an event-sourced aggregate. See `recount::aggregate`.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::aggregate(args.into(), item.into()).into()
}
