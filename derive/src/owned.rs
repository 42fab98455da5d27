//! The owned type to suggest for a borrowed event parameter: an event is stored and replayed,
//! so its fields own their data (`&str` becomes `String`, `&[T]` becomes `Vec<T>`).

use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{Lifetime, Type};

/// Whether `ty` borrows: a reference, or a lifetime other than `'static`, anywhere in it.
pub(crate) fn borrows(ty: &Type) -> bool {
    owned(ty, false) != *ty
}

/// `ty` with every reference replaced by the owned type and every other lifetime by
/// `'static`. With `absolute`, standard types are named by absolute paths (for generated
/// code); without, by their usual names (for messages).
pub(crate) fn owned(ty: &Type, absolute: bool) -> Type {
    struct Owner(bool);
    impl VisitMut for Owner {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Reference(r) = ty {
                let mut elem = (*r.elem).clone();
                self.visit_type_mut(&mut elem);
                *ty = owned_of(elem, self.0);
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
        fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
            if l.ident != "static" {
                *l = Lifetime::new("'static", l.span());
            }
        }
    }
    let mut ty = ty.clone();
    Owner(absolute).visit_type_mut(&mut ty);
    ty
}

/// The owned counterpart of a borrowed `elem`: `str` -> `String`, `[T]` -> `Vec<T>`, the
/// unsized path and OS string types to their buffers, anything else itself.
fn owned_of(elem: Type, absolute: bool) -> Type {
    let named = |short: &str, long: &str| -> Type {
        syn::parse_str(if absolute { long } else { short }).expect("a type path")
    };
    match &elem {
        Type::Slice(s) => {
            let inner = &s.elem;
            if absolute {
                syn::parse_quote!(::std::vec::Vec<#inner>)
            } else {
                syn::parse_quote!(Vec<#inner>)
            }
        }
        Type::Path(p) if p.qself.is_none() => {
            match p
                .path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .as_deref()
            {
                Some("str") => named("String", "::std::string::String"),
                Some("Path") => named("PathBuf", "::std::path::PathBuf"),
                Some("OsStr") => named("OsString", "::std::ffi::OsString"),
                Some("CStr") => named("CString", "::std::ffi::CString"),
                _ => elem,
            }
        }
        _ => elem,
    }
}

/// A type as people write it: `Vec<&str>`, not `Vec < & str >`.
pub(crate) fn display(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        ("& '", "&'"),
        ("& ", "&"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (":: ", "::"),
        (" ::", "::"),
        ("[ ", "["),
        (" ]", "]"),
        ("( ", "("),
        (" )", ")"),
        (" ;", ";"),
    ] {
        text = text.replace(from, to);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_types_get_their_owned_counterparts() {
        for (borrowed, suggested) in [
            ("&str", "String"),
            ("&'a str", "String"),
            ("&[u8]", "Vec<u8>"),
            ("&mut Vec<u8>", "Vec<u8>"),
            ("Option<&str>", "Option<String>"),
            ("&std::path::Path", "PathBuf"),
            ("Cow<'a, str>", "Cow<'static, str>"),
            ("&Genre", "Genre"),
        ] {
            let ty: Type = syn::parse_str(borrowed).unwrap();
            assert!(borrows(&ty), "{borrowed}");
            assert_eq!(display(&owned(&ty, false)), suggested, "{borrowed}");
        }
        let owned_already: Type = syn::parse_str("Vec<Cow<'static, str>>").unwrap();
        assert!(!borrows(&owned_already));
    }
}
