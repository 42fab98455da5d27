use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

// The only error reported is the macro's own: the commands below, which name the event
// enum, still compile against the enum the macro emits beside its errors.
#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event(version = 0)]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }

    fn rename(&self, title: &str) -> Result<Vec<StoryEvent>, std::fmt::Error> {
        Ok(vec![StoryEvent::Renamed { title: title.to_owned() }])
    }
}

fn renamed_events_compare() -> bool {
    Story::default().rename("x").unwrap().clone() == vec![]
}

fn main() {}
