use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event]
    fn renamed(&mut self, title: &str) {
        self.title = title.to_owned();
    }

    fn rename(&self, title: &str) -> Result<Vec<StoryEvent>, std::fmt::Error> {
        Ok(vec![StoryEvent::Renamed { title: title.to_owned() }])
    }
}

fn main() {}
