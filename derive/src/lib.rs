//! The `#[aggregate]` attribute macro of Recount. Use it through `recount::aggregate`.

use proc_macro::TokenStream;

/// Placeholder: replaced by the real macro in the macro issue.
#[proc_macro_attribute]
pub fn aggregate(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
