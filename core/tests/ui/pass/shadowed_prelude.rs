//! The generated code names everything absolutely: a module that shadows prelude names
//! still compiles.

mod domain {
    #![allow(dead_code)]

    use recount::aggregate;
    use serde::{Deserialize, Serialize};

    pub struct Result;
    pub struct Option;
    pub struct Vec;
    pub struct String;
    pub struct Box;
    pub struct Ok;
    pub struct Err;
    pub struct Some;
    pub struct None;
    pub struct ToOwned;
    pub struct Into;
    pub mod core {}
    pub mod std {}
    pub mod serde_json {}

    #[derive(Debug, Default, ::core::cmp::PartialEq, Serialize, Deserialize)]
    pub struct Story {
        pub title: ::std::string::String,
        pub chapters: ::std::vec::Vec<u32>,
    }

    #[aggregate(category = "story", error = ::std::fmt::Error, snapshot_every = 10)]
    impl Story {
        /// Renamed.
        #[event]
        fn renamed(&mut self, title: ::std::string::String) {
            self.title = title;
        }

        /// A chapter, v2.
        #[event(version = 2, upcast(from = 1, with = super::chapter_v1))]
        fn chapter_added(&mut self, number: u32, words: ::std::option::Option<u32>) {
            self.chapters.push(number);
        }

        /// Command.
        pub fn rename(
            &self,
            title: &str,
        ) -> ::core::result::Result<::std::vec::Vec<StoryEvent>, ::std::fmt::Error> {
            ::core::result::Result::Ok(::std::vec![StoryEvent::Renamed { title: title.into() }])
        }
    }
}

fn chapter_v1(v: serde_json::Value) -> serde_json::Value {
    v
}

fn main() {
    use recount::{Aggregate, Event};
    let events = domain::Story::default().rename("Dune").unwrap();
    let payload = events[0].encode().unwrap();
    let back = domain::StoryEvent::decode("story.renamed", 1, payload.get()).unwrap();
    let story = domain::Story::replayed([back]);
    assert_eq!(story.title, "Dune");
    let json = story.encode_snapshot().unwrap().unwrap();
    assert_eq!(domain::Story::decode_snapshot(&json).unwrap().unwrap(), story);
    let chapter = domain::StoryEvent::decode("story.chapter_added", 1, r#"{"number":3}"#).unwrap();
    assert_eq!(chapter, domain::StoryEvent::ChapterAdded { number: 3, words: None });
}
