"""WebShop's reward for a purchase, as the paper and its environment define it.

From Yao et al. 2022 (arXiv 2207.01206, section 3.1) and WebShop's ``goal.get_reward``:

    r = r_type · (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price ≤ u_price])
              / (|U_att| + |U_opt| + 1)

for goal ``U`` (attributes, options, price bound) and purchase ``Y`` (product, chosen options,
price). Matching, component by component:

- attribute: a goal attribute matches when some product attribute matches it fuzzily (token-set
  ratio above 85), or when it occurs in the title, the bullet points or the description;
- option: a goal option value matches when some chosen option value matches it fuzzily, both
  first reduced to the first color word they contain (WebShop's ``normalize_color``);
- price: the product's price is at most the goal's bound;
- type: 1 when the product was listed under the same search query, shares two breadcrumb parts
  with the target, or has ``title_score > 0.2`` (the share of the target title's nouns that the
  product's title has; 0.2 for a target title without nouns); 0.5 otherwise; but 0.1 when
  ``title_score < 0.1`` and 0 when no noun is shared.

Goal options are compared by value, as WebShop does for its human-written instructions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, utils

from hero_agents.adapters.envs.webshop_catalog import Goal, Product

FUZZY_THRESHOLD = 85.0
"""A token-set ratio above this is a match (WebShop's threshold)."""

COLORS: tuple[str, ...] = (
    "beige", "berry", "black", "blue", "brown", "burgundy", "coral", "cream", "gold", "gray",
    "green", "grey", "ivory", "khaki", "lavender", "mauve", "navy", "nude", "oak", "olive",
    "orange", "pink", "purple", "red", "rose", "sage", "silver", "tan", "teal", "walnut", "white",
    "yellow",
)  # fmt: skip
"""Base color words, in matching order: a color option is reduced to the first one it contains."""


@dataclass(frozen=True)
class TypeMatch:
    """WebShop's product-type reward and the signals behind it."""

    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


@dataclass(frozen=True)
class PurchaseReward:
    """A purchase's reward and its components (WebShop's verbose reward info)."""

    reward: float
    r_type: float
    r_att: float
    r_option: float | None
    """None when the goal names no option."""
    r_price: bool
    attribute_matches: int
    option_matches: int
    type_match: TypeMatch

    def as_info(self) -> dict[str, object]:
        """The components as a JSON-ready dict."""
        return {
            "r_type": self.r_type,
            "r_att": self.r_att,
            "r_option": self.r_option,
            "r_price": self.r_price,
            "attribute_matches": self.attribute_matches,
            "option_matches": self.option_matches,
            "query_match": self.type_match.query_match,
            "category_match": self.type_match.category_match,
            "title_score": self.type_match.title_score,
        }


def fuzzy_match(a: str, b: str) -> bool:
    """Whether two phrases match as WebShop matches them: token-set ratio above 85 after
    lower-casing and replacing non-alphanumerics with spaces (``thefuzz``'s full processing)."""
    return fuzz.token_set_ratio(a, b, processor=utils.default_process) > FUZZY_THRESHOLD


def normalize_color(value: str) -> str:
    """The first base color word `value` contains, else `value` unchanged."""
    return next((color for color in COLORS if color in value), value)


def type_match(product: Product, goal: Goal) -> TypeMatch:
    """The product-type reward: is the purchase the kind of product the goal asks for?"""
    query_match = product.query == goal.query
    bought_parts = {part.strip() for part in product.product_category.split("›")}
    wanted_parts = {part.strip() for part in goal.product_category.split("›")}
    category_match = len(bought_parts & wanted_parts) >= 2
    wanted_nouns = set(goal.name_nouns)
    if wanted_nouns:
        title_score = len(set(product.title_nouns) & wanted_nouns) / len(wanted_nouns)
    else:
        title_score = 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeMatch(r_type, query_match, category_match, title_score)


def attribute_matches(product: Product, goal: Goal) -> int:
    """How many goal attributes the product has (fuzzily, or in its title or texts)."""
    texts = (
        product.title.lower(),
        " ".join(product.bullet_points).lower(),
        product.description.lower(),
    )
    return sum(
        any(fuzzy_match(have, wanted) for have in product.attributes)
        or any(wanted in text for text in texts)
        for wanted in goal.attributes
    )


def option_matches(chosen: Sequence[str], wanted: Sequence[str]) -> int:
    """How many wanted option values some chosen value matches (after color reduction)."""
    chosen_norm = [normalize_color(value) for value in chosen]
    return sum(
        any(fuzzy_match(have, normalize_color(value)) for have in chosen_norm) for value in wanted
    )


def price_match(price: float, goal: Goal) -> bool:
    """Whether the price is within the goal's bound."""
    return price <= goal.price_upper


def purchase_reward(product: Product, options: Mapping[str, str], goal: Goal) -> PurchaseReward:
    """WebShop's reward for buying `product` with the chosen `options` under `goal`."""
    kind = type_match(product, goal)
    attributes = attribute_matches(product, goal)
    wanted = list(goal.options.values())
    options_hit = option_matches(list(options.values()), wanted)
    in_budget = price_match(product.price, goal)
    total = (attributes + options_hit + int(in_budget)) / (len(goal.attributes) + len(wanted) + 1)
    return PurchaseReward(
        reward=total * kind.r_type,
        r_type=kind.r_type,
        r_att=attributes / len(goal.attributes) if goal.attributes else 0.0,
        r_option=options_hit / len(wanted) if wanted else None,
        r_price=in_budget,
        attribute_matches=attributes,
        option_matches=options_hit,
        type_match=kind,
    )
