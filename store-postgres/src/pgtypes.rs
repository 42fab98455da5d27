//! Two column types sqlx does not decode the way the store needs: `xid8` (transaction ids,
//! half of a cursor) and `json` read as the stored text, with no re-parse and no server cast.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// The built-in OIDs of `xid8` and `json`; fixed since PostgreSQL 13 and 9.2.
const XID8_OID: u32 = 5069;
const JSON_OID: u32 = 114;

/// A full (epoch-extended) transaction id, `xid8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Xid8(pub(crate) u64);

impl Type<Postgres> for Xid8 {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(XID8_OID))
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        ty.oid() == Some(Oid(XID8_OID))
    }
}

impl Encode<'_, Postgres> for Xid8 {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.0.to_be_bytes());
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for Xid8 {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => xid8_from_binary(value.as_bytes()?),
            PgValueFormat::Text => xid8_from_text(value.as_str()?),
        }
    }
}

/// An `xid8` in the binary format: 8 bytes, big-endian.
pub(crate) fn xid8_from_binary(bytes: &[u8]) -> Result<Xid8, BoxDynError> {
    let bytes: [u8; 8] = bytes.try_into()?;
    Ok(Xid8(u64::from_be_bytes(bytes)))
}

/// An `xid8` in the text format: its decimal digits.
pub(crate) fn xid8_from_text(text: &str) -> Result<Xid8, BoxDynError> {
    Ok(Xid8(text.parse()?))
}

/// A `json` value as its text. PostgreSQL sends `json` as the text it stored (it validated
/// it on the way in), so decoding is a UTF-8 check and a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonText(pub(crate) String);

impl Type<Postgres> for JsonText {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(JSON_OID))
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        ty.oid() == Some(Oid(JSON_OID))
    }
}

impl Decode<'_, Postgres> for JsonText {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(JsonText(value.as_str()?.to_owned()))
    }
}
