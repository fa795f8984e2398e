"""webshop-lite's generated catalog: products and shopping instructions in WebShop's data model.

WebShop (Yao et al. 2022, "WebShop: Towards Scalable Real-World Web Interaction with Grounded
Language Agents", arXiv 2207.01206) scrapes 1.18M Amazon products and crowd-sources 12,087
instructions. Neither can be fetched here, so webshop-lite generates its own small catalog with
the fields WebShop's reward reads: a product's title, the search query it was listed under, its
category breadcrumb (``A › B › C``), attributes, options (e.g. color and size), price, bullet
points and description; a goal's target product, attributes, options and price bound.

Products come in WebShop's five categories (beauty, food, fashion, furniture, electronics), a
few product types each, several brands per type: products of one type share a query and a
breadcrumb and differ in attributes, options and price, so a wrong pick costs part of the reward.
A goal names some of its target's attributes, one value per option and a price bound drawn the
way WebShop draws it (the larger of two of the four multiples of 10 above the price).

WebShop finds a product name's nouns with spaCy for its type reward; a generated product knows
its own (`Product.title_nouns`: the brand and the product type's nouns). Everything is seeded:
two generations are identical.
"""

from __future__ import annotations

import functools
import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

SEED = 0
"""Seed of the generated catalog and instructions."""

BRANDS_PER_TYPE = 6
"""Products generated for each product type (one per brand)."""

GOALS_PER_PRODUCT = 2
"""Instructions generated for each product."""

PRICE_STEPS: tuple[float, ...] = tuple(10.0 * i for i in range(1, 100))
"""WebShop's price bounds: multiples of 10 dollars."""


@dataclass(frozen=True)
class Product:
    """One product, with the fields WebShop's pages show and its reward reads."""

    asin: str
    title: str
    title_nouns: tuple[str, ...]
    """The nouns of the title, lower-cased (WebShop tags them with spaCy)."""
    category: str
    query: str
    """The search query the product was listed under (WebShop's ``query``)."""
    product_category: str
    """Category breadcrumb, parts separated by ``›``."""
    attributes: tuple[str, ...]
    options: Mapping[str, tuple[str, ...]]
    price: float
    bullet_points: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Goal:
    """One shopping instruction, written from its target product (WebShop's goal dict)."""

    goal_id: str
    asin: str
    instruction: str
    query: str
    product_category: str
    name_nouns: tuple[str, ...]
    """The nouns of the target's title (what WebShop's type reward compares against)."""
    attributes: tuple[str, ...]
    options: Mapping[str, str]
    price_upper: float


@dataclass(frozen=True)
class Catalog:
    """The products (by asin) and the goals (in id order) of webshop-lite."""

    products: Mapping[str, Product]
    goals: tuple[Goal, ...]
    splits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def goal(self, goal_id: str) -> Goal:
        """The goal with this id (KeyError if there is none)."""
        return self._goals_by_id[goal_id]

    @functools.cached_property
    def _goals_by_id(self) -> dict[str, Goal]:
        return {g.goal_id: g for g in self.goals}


@dataclass(frozen=True)
class _ProductType:
    name: str
    nouns: tuple[str, ...]
    category: str
    product_category: str
    attributes: tuple[str, ...]
    options: Mapping[str, tuple[str, ...]]
    price_range: tuple[float, float]
    use: str


# Attributes and option values are distinct within a type (an option value names one option).
_TYPES = (
    _ProductType("running shoes", ("shoes",), "fashion",
                 "Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running",
                 ("lightweight", "non-slip", "breathable mesh", "memory foam", "rubber sole",
                  "machine washable"),
                 {"color": ("black", "white", "navy blue", "grey", "red"),
                  "size": ("8", "9", "10", "11", "12")}, (35.0, 120.0), "daily runs"),
    _ProductType("rain jacket", ("rain", "jacket"), "fashion",
                 "Clothing, Shoes & Jewelry › Women › Clothing › Coats & Jackets › Rain",
                 ("waterproof", "packable", "adjustable hood", "zip pockets", "windproof",
                  "quick drying"),
                 {"color": ("olive green", "yellow", "black", "burgundy"),
                  "size": ("small", "medium", "large", "x-large")}, (40.0, 150.0), "wet days"),
    _ProductType("cotton t-shirt", ("cotton", "t-shirt"), "fashion",
                 "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
                 ("short sleeve", "crew neck", "relaxed fit", "tagless", "pre-shrunk",
                  "moisture wicking"),
                 {"color": ("white", "heather grey", "navy", "forest green", "black"),
                  "size": ("small", "medium", "large", "x-large", "xx-large")}, (8.0, 35.0),
                 "everyday wear"),
    _ProductType("face moisturizer", ("face", "moisturizer"), "beauty",
                 "Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers",
                 ("fragrance free", "hyaluronic acid", "spf 30", "oil free", "vegan",
                  "sensitive skin"),
                 {"size": ("1.7 fl oz", "3.4 fl oz", "5 fl oz")}, (9.0, 60.0), "daily care"),
    _ProductType("shampoo", ("shampoo",), "beauty",
                 "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
                 ("sulfate free", "paraben free", "argan oil", "color safe", "dandruff control",
                  "tea tree"),
                 {"size": ("8 fl oz", "16 fl oz", "32 fl oz"),
                  "scent": ("coconut", "lavender", "unscented")}, (6.0, 40.0), "clean hair"),
    _ProductType("lipstick", ("lipstick",), "beauty",
                 "Beauty & Personal Care › Makeup › Lips › Lipstick",
                 ("long lasting", "matte finish", "cruelty free", "moisturizing", "smudge proof",
                  "paraben free"),
                 {"color": ("ruby red", "nude", "berry", "coral", "mauve")}, (5.0, 30.0),
                 "any occasion"),
    _ProductType("green tea", ("green", "tea"), "food",
                 "Grocery & Gourmet Food › Beverages › Tea › Green",
                 ("organic", "caffeine free", "non gmo", "individually wrapped", "gluten free",
                  "loose leaf"),
                 {"flavor": ("jasmine", "mint", "lemon", "original"),
                  "size": ("16 count", "40 count", "100 count")}, (4.0, 30.0), "a calm break"),
    _ProductType("protein bars", ("protein", "bars"), "food",
                 "Grocery & Gourmet Food › Snack Foods › Bars › Protein",
                 ("low sugar", "high protein", "gluten free", "keto friendly", "plant based",
                  "non gmo"),
                 {"flavor": ("chocolate", "peanut butter", "vanilla almond", "cookie dough"),
                  "size": ("12 count", "30 count")}, (12.0, 45.0), "snacks on the go"),
    _ProductType("coffee beans", ("coffee", "beans"), "food",
                 "Grocery & Gourmet Food › Beverages › Coffee › Whole Coffee Beans",
                 ("dark roast", "fair trade", "single origin", "low acid", "organic",
                  "medium roast"),
                 {"size": ("12 ounce", "2 pound")}, (9.0, 60.0), "morning coffee"),
    _ProductType("office chair", ("office", "chair"), "furniture",
                 "Home & Kitchen › Furniture › Home Office Furniture › Chairs",
                 ("lumbar support", "adjustable height", "mesh back", "swivel", "padded armrests",
                  "easy assembly"),
                 {"color": ("black", "grey", "white", "blue")}, (60.0, 300.0), "long workdays"),
    _ProductType("bookshelf", ("bookshelf",), "furniture",
                 "Home & Kitchen › Furniture › Living Room Furniture › Bookcases",
                 ("solid wood", "5 tier", "wall mounted", "easy assembly", "industrial style",
                  "space saving"),
                 {"color": ("walnut", "white", "black", "oak")}, (40.0, 220.0),
                 "books and decor"),
    _ProductType("bed sheets", ("bed", "sheets"), "furniture",
                 "Home & Kitchen › Bedding › Sheets & Pillowcases › Sheet & Pillowcase Sets",
                 ("deep pocket", "wrinkle free", "egyptian cotton", "cooling", "hypoallergenic",
                  "machine washable"),
                 {"color": ("white", "sage green", "light grey", "navy"),
                  "size": ("twin", "full", "queen", "king")}, (20.0, 120.0), "restful sleep"),
    _ProductType("bluetooth headphones", ("bluetooth", "headphones"), "electronics",
                 "Electronics › Headphones, Earbuds & Accessories › Headphones › Over-Ear",
                 ("noise cancelling", "wireless charging", "40 hour battery", "foldable",
                  "built-in microphone", "fast charging"),
                 {"color": ("black", "silver", "rose gold", "midnight blue")}, (25.0, 250.0),
                 "music and calls"),
    _ProductType("phone charger", ("phone", "charger"), "electronics",
                 "Electronics › Cell Phones & Accessories › Chargers & Power Adapters",
                 ("usb c", "fast charging", "compact", "dual port", "foldable plug",
                  "overheat protection"),
                 {"color": ("white", "black"),
                  "size": ("20w", "30w", "65w")}, (10.0, 50.0), "charging at home"),
    _ProductType("hdmi cable", ("hdmi", "cable"), "electronics",
                 "Electronics › Television & Video › Accessories › Cables › HDMI Cables",
                 ("4k", "high speed", "braided", "gold plated", "ethernet", "8k"),
                 {"size": ("3 feet", "6 feet", "10 feet", "25 feet")}, (6.0, 35.0),
                 "tv and gaming"),
)  # fmt: skip

_BRANDS = {
    "fashion": ("Trailpeak", "Northwind", "Velora", "Kestrel", "Marlow", "Ashby", "Quillon"),
    "beauty": ("Lumina", "Serabelle", "Purecrest", "Oakmoss", "Dewbloom", "Calyra", "Veyla"),
    "food": ("Harvestone", "Goldleaf", "Brightfield", "Kinfolk", "Mapleway", "Sunvale", "Orro"),
    "furniture": ("Homestead", "Loftwell", "Timberline", "Nestory", "Ardenwood", "Brisk", "Vale"),
    "electronics": ("Voltix", "Sonara", "Nexon", "Ampwave", "Corebyte", "Lynx", "Zentra"),
}

_TEMPLATES = (
    "i am looking for {attributes} {type}{options}, and price lower than {price} dollars",
    "i need {type}, {attributes}{options}, and price lower than {price} dollars",
    "find me {attributes} {type}{options}, and price lower than {price} dollars",
)


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _product(kind: _ProductType, brand: str, rng: random.Random, asin: str) -> Product:
    attributes = tuple(rng.sample(kind.attributes, 3))
    options = {
        name: tuple(sorted(rng.sample(values, min(3, len(values))), key=values.index))
        for name, values in kind.options.items()
    }
    low, high = kind.price_range
    price = round(rng.uniform(low, high)) - 0.01
    headline = attributes[0].title()
    title = f"{brand} {kind.name.title()}, {headline}, for {kind.use.title()}"
    bullets = tuple(
        f"{attribute.upper()}: {brand} {kind.name}, {attribute}, made for {kind.use}."
        for attribute in attributes
    )
    return Product(
        asin=asin,
        title=title,
        title_nouns=(brand.lower(), *kind.nouns),
        category=kind.category,
        query=kind.name,
        product_category=kind.product_category,
        attributes=attributes,
        options=options,
        price=price,
        bullet_points=bullets,
        description=f"{brand} makes {kind.name} for {kind.use}. Order yours today.",
    )


def _asin(rng: random.Random, taken: Mapping[str, Product]) -> str:
    """A fresh ASIN-like id (``B0`` and eight upper-case letters or digits)."""
    while True:
        asin = "B0" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
        if asin not in taken:
            return asin


def _price_upper(price: float, rng: random.Random) -> float:
    steps = [p for p in PRICE_STEPS if p > price][:4]
    return max(rng.sample(steps, 2))


def _goal(goal_id: str, product: Product, rng: random.Random) -> Goal:
    attributes = tuple(rng.sample(product.attributes, rng.randint(1, 2)))
    options = {name: rng.choice(values) for name, values in product.options.items()}
    upper = _price_upper(product.price, rng)
    option_text = "".join(f", and {name}: {value}" for name, value in options.items())
    option_text = option_text.replace(", and ", " with ", 1)
    instruction = rng.choice(_TEMPLATES).format(
        attributes=_and(list(attributes)),
        type=product.query,
        options=option_text,
        price=f"{upper:.2f}",
    )
    return Goal(
        goal_id=goal_id,
        asin=product.asin,
        instruction=instruction,
        query=product.query,
        product_category=product.product_category,
        name_nouns=product.title_nouns,
        attributes=attributes,
        options=options,
        price_upper=upper,
    )


@functools.cache
def generate_catalog(seed: int = SEED) -> Catalog:
    """The webshop-lite catalog (cached per seed): products, goals and train/test splits.

    Every third goal is a test goal; a product's two goals can fall in different splits, as
    WebShop's goals of one product can.
    """
    rng = random.Random(seed)
    products: dict[str, Product] = {}
    for kind in _TYPES:
        for brand in rng.sample(_BRANDS[kind.category], BRANDS_PER_TYPE):
            asin = _asin(rng, products)
            product = _product(kind, brand, rng, asin)
            products[product.asin] = product
    order = list(products.values())
    rng.shuffle(order)
    goals = tuple(
        _goal(f"ws{len(order) * g + i:04d}", product, rng)
        for g in range(GOALS_PER_PRODUCT)
        for i, product in enumerate(order)
    )
    ids = [goal.goal_id for goal in goals]
    splits = {
        "train": tuple(i for n, i in enumerate(ids) if n % 3 != 2),
        "test": tuple(i for n, i in enumerate(ids) if n % 3 == 2),
        "all": tuple(ids),
    }
    return Catalog(products=products, goals=goals, splits=splits)
