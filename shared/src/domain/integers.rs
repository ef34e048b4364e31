//! Integers that may have been stored as `2.0`: before numbers kept their type on the way to
//! D1 (`ports::bind`), D1 stored every bound number as REAL, and JSON written by SQL from such a
//! value says `2.0`. Readers accept a whole REAL as the integer it is, everywhere through here.

use serde::Deserialize;
use serde_json::Value;

/// A JSON number that is an integer, or a whole `2.0`; None otherwise.
pub fn integral(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// `#[serde(deserialize_with = "crate::domain::integers::deserialize")]` for an `i64` field.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    integral(&v).ok_or_else(|| serde::de::Error::custom(format!("{v} is not an integer")))
}
