//! JSON request bodies parsed strictly: an object that names a key twice is refused (serde_json
//! would keep the last value silently, so `{"surname": "A", "surname": "B"}` could pass one
//! reviewer's eye and store another value). Built as a `serde` visitor over serde_json's own
//! parser, so everything else (numbers, escapes, the recursion limit) is serde_json's.

use serde::de::{self, Deserialize, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parse `bytes` as one JSON value; a duplicate key anywhere is an error naming it.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict::deserialize(&mut de)?;
    de.end()?;
    Ok(v.0)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
        Strict::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let Strict(v) = map.next_value_seed(StrictSeed)?;
            out.insert(key, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Strict;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
        Strict::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_named_twice_at_any_depth_is_an_error_naming_it() {
        for (body, key) in [
            (r#"{"surname": "A", "surname": "B"}"#, "surname"),
            (r#"{"address": {"town": "X", "town": "Y"}}"#, "town"),
            (r#"{"dependants": [{"name": "a", "name": "b"}]}"#, "name"),
            // the same key after unescaping
            (r#"{"surname": "A", "sur\u006eame": "B"}"#, "surname"),
        ] {
            let e = from_slice(body.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(&format!("duplicate key `{key}`")), "{body}: {e}");
        }
    }

    #[test]
    fn bodies_without_duplicates_parse_as_serde_json_parses_them() {
        for body in [
            r#"{"a": 1, "b": [1, 2.5, -3, null, true], "c": {"a": "x\ny"}, "d": 18446744073709551615}"#,
            r#"[]"#,
            r#""s""#,
            r#"  {"same": {"k": 1}, "other": {"k": 2}}  "#,
        ] {
            let want: Value = serde_json::from_str(body).unwrap();
            assert_eq!(from_slice(body.as_bytes()).unwrap(), want, "{body}");
        }
        assert!(from_slice(b"{\"a\": 1} x").is_err());
        assert_eq!(from_slice(b"{}").unwrap(), json!({}));
    }
}
