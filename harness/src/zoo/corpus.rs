//! A deterministic synthetic English corpus: a small probabilistic grammar over a few
//! hundred words, seeded by its own `corpus_seed`.
//!
//! Why synthetic: the zoo must rebuild byte-identically anywhere, with no download and no
//! licence question (the text is generated, so none applies). The grammar is chosen so a
//! tiny model can learn *some* of it in a few hundred steps, which gives checkpoints at
//! different steps genuinely different functions:
//!
//! - surface syntax: determiners, adjectives, nouns and past-tense verbs in fixed order;
//! - a seeded "world" of facts that stay consistent across the corpus (who lives in which
//!   city, which city lies in which country, who works as what, the colour of things),
//!   so the facts are learnable associations rather than noise;
//! - questions followed by their correct answers about that world;
//! - small additions with correct sums, and counting runs in number words.
//!
//! A document is 3-7 sentences on one line. Same seed and size → same text, on every
//! platform: only `rand_chacha` draws are used, never floating point.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NAMES: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Henry", "Ida", "Jack", "Kate", "Leo",
    "Maria", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Xenia",
    "Yusuf", "Zoe", "Omar", "Lena", "Hugo", "Nina", "Mila", "Theo", "Iris", "Oscar", "Ruth", "Eli",
];
const CITIES: &[&str] = &[
    "Paris", "Lyon", "Berlin", "Munich", "Madrid", "Seville", "Rome", "Milan", "Lisbon", "Porto", "Vienna",
    "Oslo", "Bergen", "Dublin", "Cork", "Warsaw", "Krakow", "Prague", "Athens", "Cairo", "Tokyo", "Osaka",
    "Lima", "Quito",
];
const COUNTRIES: &[&str] = &[
    "France", "Germany", "Spain", "Italy", "Portugal", "Austria", "Norway", "Ireland", "Poland", "Czechia",
    "Greece", "Egypt", "Japan", "Peru", "Ecuador",
];
/// Each city's country, by index into `COUNTRIES` (real geography, fixed).
const CITY_COUNTRY: &[usize] =
    &[0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8, 8, 9, 10, 11, 12, 12, 13, 14];
const JOBS: &[&str] = &[
    "teacher", "doctor", "baker", "farmer", "pilot", "nurse", "painter", "writer", "driver", "cook",
    "lawyer", "singer", "builder", "dancer", "sailor", "miner", "tailor", "judge", "clerk", "guard",
];
const NOUNS: &[&str] = &[
    "dog", "cat", "bird", "horse", "fox", "mouse", "fish", "cow", "sheep", "goat", "ball", "book", "box",
    "cup", "chair", "table", "door", "window", "car", "boat", "train", "bike", "tree", "flower", "stone",
    "river", "hill", "road", "house", "garden", "apple", "bread", "cake", "letter", "song", "game", "hat",
    "coat", "shoe", "key", "lamp", "clock", "map", "coin", "rope", "bell", "kite", "drum", "pen", "bag",
    "shell", "star", "cloud", "leaf", "nest", "egg", "bowl", "knife", "spoon", "ring",
];
const ADJECTIVES: &[&str] = &[
    "small", "big", "old", "new", "red", "green", "happy", "sad", "quiet", "loud", "fast", "slow", "warm",
    "cold", "dark", "bright", "soft", "hard", "heavy", "light", "clean", "dirty", "tall", "short", "young",
    "strange", "lucky", "busy", "brave", "tiny",
];
const VERBS: &[&str] = &[
    "saw", "found", "took", "liked", "chased", "carried", "painted", "lost", "kept", "held", "moved",
    "opened", "closed", "pushed", "pulled", "washed", "fixed", "bought", "sold", "made", "watched",
    "touched", "dropped", "lifted", "hid", "threw", "caught", "wanted", "needed", "followed", "cleaned",
    "broke", "built", "drew", "gave", "brought", "left", "met", "heard", "used",
];
const COLORS: &[&str] = &[
    "red", "blue", "green", "yellow", "black", "white", "brown", "purple", "orange", "grey", "pink", "gold",
];
const PLACES: &[&str] = &[
    "market", "park", "school", "station", "library", "beach", "forest", "museum", "bakery", "harbour",
    "farm", "church", "bridge", "castle", "shop",
];
const DAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// The facts that hold throughout one corpus, drawn from its seed.
struct World {
    home: Vec<usize>,
    job: Vec<usize>,
    color: Vec<usize>,
}

impl World {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            home: NAMES.iter().map(|_| rng.gen_range(0..CITIES.len())).collect(),
            job: NAMES.iter().map(|_| rng.gen_range(0..JOBS.len())).collect(),
            color: NOUNS.iter().map(|_| rng.gen_range(0..COLORS.len())).collect(),
        }
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, words: &[&'a str]) -> &'a str {
    words[rng.gen_range(0..words.len())]
}

fn noun_phrase(rng: &mut ChaCha8Rng) -> String {
    let det = *["the", "a", "the", "my", "her", "his", "one"].choose(rng).unwrap_or(&"the");
    if rng.gen_bool(0.5) {
        format!("{det} {} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS))
    } else {
        format!("{det} {}", pick(rng, NOUNS))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn sentence(rng: &mut ChaCha8Rng, w: &World) -> String {
    let p = rng.gen_range(0..NAMES.len());
    let name = NAMES[p];
    let city = w.home[p];
    match rng.gen_range(0..12) {
        0 | 1 => capitalise(&format!("{} {} {}.", noun_phrase(rng), pick(rng, VERBS), noun_phrase(rng))),
        2 => format!("{name} {} {}.", pick(rng, VERBS), noun_phrase(rng)),
        3 => format!("{name} lives in {}.", CITIES[city]),
        4 => format!("{} is in {}.", CITIES[city], COUNTRIES[CITY_COUNTRY[city]]),
        5 => format!("{name} works as a {}.", JOBS[w.job[p]]),
        6 => {
            let n = rng.gen_range(0..NOUNS.len());
            format!("The {} is {}.", NOUNS[n], COLORS[w.color[n]])
        }
        7 => match rng.gen_range(0..4) {
            0 => format!("Q: Where does {name} live? A: {name} lives in {}.", CITIES[city]),
            1 => format!("Q: What does {name} do? A: {name} is a {}.", JOBS[w.job[p]]),
            2 => {
                let c = CITIES[city];
                format!("Q: Where is {c}? A: {c} is in {}.", COUNTRIES[CITY_COUNTRY[city]])
            }
            _ => {
                let n = rng.gen_range(0..NOUNS.len());
                format!("Q: What color is the {0}? A: The {0} is {1}.", NOUNS[n], COLORS[w.color[n]])
            }
        },
        8 => {
            let (a, b) = (rng.gen_range(0..50u32), rng.gen_range(0..50u32));
            if rng.gen_bool(0.5) {
                format!("{a} plus {b} is {}.", a + b)
            } else {
                format!("Q: What is {a} plus {b}? A: {}.", a + b)
            }
        }
        9 => {
            let start = rng.gen_range(0..15usize);
            let len = rng.gen_range(3..=6usize).min(NUMBER_WORDS.len() - start);
            capitalise(&format!("{}.", NUMBER_WORDS[start..start + len].join(", ")))
        }
        10 => format!(
            "On {} {name} went to the {} and {} {}.",
            pick(rng, DAYS),
            pick(rng, PLACES),
            pick(rng, VERBS),
            noun_phrase(rng)
        ),
        _ => format!(
            "{name} has {} {} {}s.",
            NUMBER_WORDS[rng.gen_range(2..=12usize)],
            pick(rng, ADJECTIVES),
            pick(rng, NOUNS)
        ),
    }
}

/// `n_sentences` sentences grouped into documents of 3-7 sentences, one document per
/// string. Deterministic in `(seed, n_sentences)`.
pub fn generate(seed: u64, n_sentences: usize) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let world = World::new(&mut rng);
    let mut docs = Vec::new();
    let mut left = n_sentences;
    while left > 0 {
        let k = rng.gen_range(3..=7usize).min(left);
        let doc: Vec<String> = (0..k).map(|_| sentence(&mut rng, &world)).collect();
        docs.push(doc.join(" "));
        left -= k;
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_deterministic_and_seed_dependent() {
        let a = generate(7, 200);
        assert_eq!(a, generate(7, 200));
        assert_ne!(a, generate(8, 200));
        let n: usize = a.iter().map(|d| d.matches(". ").count() + 1).sum();
        assert!(n >= 200, "{n} sentences");
        assert_eq!(CITY_COUNTRY.len(), CITIES.len());
    }

    #[test]
    fn facts_are_consistent_within_a_corpus() {
        // Every "X lives in Y." for the same X names the same Y.
        let text = generate(3, 3000).join(" ");
        let mut homes = std::collections::BTreeMap::new();
        for s in text.split(". ") {
            let s = s.trim_start_matches(|c: char| !c.is_alphabetic());
            let words: Vec<&str> = s.split(' ').collect();
            if words.len() == 4 && words[1] == "lives" && words[2] == "in" {
                let city = words[3].trim_end_matches('.');
                let prev = homes.insert(words[0].to_string(), city.to_string());
                assert!(prev.is_none_or(|p| p == city), "{} moved", words[0]);
            }
        }
        assert!(homes.len() > 10);
    }
}
