//! Collects every error found while reading and checking the input, so the user sees all of
//! them in one build (the shape of serde_derive's `internals::ctxt`).

use quote::ToTokens;
use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

/// The error sink threaded through `attr`, `ast` and `check`.
#[derive(Debug)]
pub(crate) struct Ctxt {
    /// `None` once [`Ctxt::check`] ran: reporting after that is a bug.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// An empty context.
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error spanned on the tokens of `obj`.
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, obj: T, msg: M) {
        self.syn_error(syn::Error::new_spanned(obj.into_token_stream(), msg));
    }

    /// Records an error syn already built (and spanned).
    pub(crate) fn syn_error(&self, err: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("error reported after `Ctxt::check`")
            .push(err);
    }

    /// Consumes the context: all recorded errors combined into one, or `Ok`.
    pub(crate) fn check(self) -> syn::Result<()> {
        let errors = self
            .errors
            .borrow_mut()
            .take()
            .expect("`Ctxt::check` called twice");
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for rest in errors {
            combined.combine(rest);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        // Dropping unchecked errors would silently accept bad input.
        if !thread::panicking() && self.errors.borrow().is_some() {
            panic!("forgot to call `Ctxt::check`");
        }
    }
}
