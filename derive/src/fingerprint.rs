//! A stable hash of token trees, for the snapshot tag: when an event method's signature or
//! body changes, so does the tag, and stored snapshots made by the old code are ignored.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// FNV-1a, 64 bits: tiny, dependency-free and the same on every build (unlike `std`'s
/// `DefaultHasher`, whose algorithm is unspecified).
#[derive(Debug)]
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The hash of `tokens`, written out token by token with single spaces, so it depends on the
/// tokens only, not on formatting, comments or how a compiler version prints a stream.
pub(crate) fn fingerprint(tokens: TokenStream) -> u64 {
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    write(&mut hash, tokens);
    hash.0
}

fn write(hash: &mut Fnv, tokens: TokenStream) {
    for tree in tokens {
        match tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                hash.write(open.as_bytes());
                write(hash, g.stream());
                hash.write(close.as_bytes());
            }
            TokenTree::Ident(i) => hash.write(i.to_string().as_bytes()),
            TokenTree::Punct(p) => hash.write(p.as_char().to_string().as_bytes()),
            TokenTree::Literal(l) => hash.write(l.to_string().as_bytes()),
        }
        hash.write(b" ");
    }
}

#[cfg(test)]
mod tests {
    use super::{fingerprint, Fnv};
    use quote::quote;

    #[test]
    fn formatting_does_not_matter_but_tokens_do() {
        let a = fingerprint(quote! { fn f(&mut self) { self.n += 1; } });
        let b: proc_macro2::TokenStream = "fn f(&mut self)   {\n self.n += 1 ; }".parse().unwrap();
        assert_eq!(a, fingerprint(b));
        assert_ne!(a, fingerprint(quote! { fn f(&mut self) { self.n += 2; } }));
    }

    #[test]
    fn matches_the_fnv1a_reference_values() {
        // From the FNV reference test vectors.
        for (input, expected) in [
            (&b""[..], 0xcbf2_9ce4_8422_2325),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
            hash.write(input);
            assert_eq!(hash.0, expected, "{input:?}");
        }
    }
}
