//! Every option and feature in one aggregate: a renamed crate path, visibility, `cfg`'d and
//! field-less events, lint attributes, documented and `serde`-attributed parameters, raw
//! identifiers, and upcasters returning `Result<Value, E: Display>`.

extern crate recount as rc;

use rc::aggregate;

#[derive(Debug, Default, PartialEq)]
struct Door {
    open: bool,
    kind: String,
    openings: u32,
}

fn opened_v1(mut v: serde_json::Value) -> Result<serde_json::Value, serde_json::Error> {
    v["by"] = serde_json::to_value("someone")?;
    Ok(v)
}

#[aggregate(category = "door", error = std::fmt::Error, vis = "pub(crate)", crate = "::rc")]
impl Door {
    /// Opened.
    #[event(version = 2, upcast(from = 1, with = opened_v1))]
    #[allow(unused_variables)]
    fn opened(&mut self, #[doc = "Who opened it."] by: String) {
        self.open = true;
        self.openings += 1;
    }

    /// Closed: no fields.
    #[event(name = "door.shut")]
    fn closed(&mut self) {
        self.open = false;
    }

    /// Typed, with a raw identifier for a keyword.
    #[event]
    fn typed(&mut self, mut r#type: String, #[serde(default)] note: Option<String>) {
        r#type.push('!');
        self.kind = r#type;
    }

    /// Only in builds with an impossible cfg: it vanishes everywhere.
    #[cfg(any())]
    #[event]
    fn never(&mut self, x: NoSuchType) {}
}

fn main() {
    use rc::{Aggregate, Event};
    assert_eq!(DoorEvent::EVENT_TYPES, ["door.opened", "door.shut", "door.typed"]);
    let opened = DoorEvent::decode("door.opened", 1, "{}").unwrap();
    assert_eq!(opened, DoorEvent::Opened { by: "someone".into() });
    let shut = DoorEvent::Closed;
    assert_eq!((shut.event_type(), shut.encode().unwrap().get()), ("door.shut", "{}"));
    let typed = DoorEvent::Typed { r#type: "oak".into(), note: None };
    assert_eq!(typed.encode().unwrap().get(), r#"{"type":"oak","note":null}"#);
    let door = Door::replayed([opened, DoorEvent::Closed, typed]);
    assert_eq!(door, Door { open: false, kind: "oak!".into(), openings: 1 });
    assert_eq!(Door::snapshot_every(), None);
    assert!(door.encode_snapshot().is_none());
}
