"""The synthetic demo shop: a realistic catalogue, users with drifting tastes, and behaviour logs.

``generate(seed=...)`` builds, deterministically for a seed, a shop with

- **items** over a category tree (9 top categories, 75 leaves), each with a brand from the
  category's brands (premium, mid-range or budget), a price, attributes (colour, material,
  size, ...), a natural title ("Kochwerk Ultimate Non-Stick Frying Pan 28 cm, Graphite") and a
  description of one to three sentences; a few percent are out of stock and about 8% are
  advertised (sponsored);
- **users** with a country and a price segment, and latent tastes: favourite leaf categories,
  brand affinities and a price level. Favourite categories drift: each user moves from one set
  of favourites to another over the time window;
- **events** in sessions. A session is a walk over items: from an item people go on to similar
  items (same category, close price, often the same brand), to complementary items (after a
  frying pan a lid or a spatula of the same size or brand), or jump to a new intent drawn from
  their current tastes; a later session often picks up where the last one ended. Each visited
  item is viewed, some are clicked (engaged with), some of those added to the cart, and at the
  end of a session carted items may be purchased.

  Searches are typed as people type: lowercase, typos (swapped, dropped, doubled or
  neighbouring letters), words cut short, synonyms ("couch" for a sofa), plurals, "28cm".
  A search shows a result list, logged as impressions at positions 0-3 (position 0 is a
  sponsored slot) and the user clicks one result (``position`` and ``sponsored`` set on the
  click) and views it. Product pages show sponsored products too: impressions whose
  click-through rate falls with the position and rises with relevance; a click leads to a
  view of the advertised item.

Event order within a visit: ``view → click → add_to_cart`` when browsing, ``search →
impression ×4 → click → view → add_to_cart`` after a search; ``purchase`` comes at the end of
the session, after the ``add_to_cart`` of the same item. Every event has a registered
``user_id`` (unless ``anonymous_share`` asks for logged-out sessions) and a ``session_id``;
sessions of one user never overlap.

The columns follow ``shelfwise.schema`` (Item, User, Event): text columns are ``object`` with
``None`` for missing values (so is ``position``: Python ints or ``None``), times are
``datetime64[ns, UTC]``. Generation is vectorised over users (the walk advances every user's
session at once): the default 150,000 events take about a second.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

__all__ = ["DemoShop", "generate", "ITEM_COLUMNS", "USER_COLUMNS", "EVENT_COLUMNS"]

ITEM_COLUMNS = ["item_id", "title", "description", "category", "brand", "price", "currency", "image", "attributes", "in_stock", "created_at", "updated_at"]
USER_COLUMNS = ["user_id", "attributes", "created_at"]
EVENT_COLUMNS = ["event_id", "user_id", "session_id", "item_id", "type", "ts", "query", "position", "sponsored"]


@dataclass
class DemoShop:
    items: pd.DataFrame  # ITEM_COLUMNS, one row per item, sorted by item_id
    users: pd.DataFrame  # USER_COLUMNS, sorted by user_id
    events: pd.DataFrame  # EVENT_COLUMNS, sorted by ts

    def __repr__(self) -> str:
        return f"DemoShop({len(self.items)} items, {len(self.users)} users, {len(self.events)} events)"


# ---------------------------------------------------------------------------------------------
# The catalogue: top categories (brands in tier order premium, mid, budget, premium, ...; colours)
# and leaves: path | noun | synonyms | median price | sizes (! = not in the title) |
# materials (key= names the attribute, default "material") | features | use | complements
# ---------------------------------------------------------------------------------------------

_TOPS = {
    "Kitchen": (
        ["Maison Chef", "Kochwerk", "Culina", "Ferro & Sohn", "Nordhaus", "Lumo", "Brava"],
        ["Graphite", "Black", "Red", "Cream", "Sage Green", "Silver", "Copper"],
    ),
    "Home & Living": (
        ["Velluto", "Nordvik", "Casa Lumen", "Oakmere", "Hygge Haus", "Stilla", "Arbor & Co"],
        ["Ivory", "Charcoal", "Ochre", "Terracotta", "Olive", "Navy", "Natural"],
    ),
    "Electronics": (
        ["Auralis", "Voltrix", "Soniq", "Kyoto Digital", "Pixelon", "Northbeam", "Zentro"],
        ["Black", "Silver", "White", "Midnight Blue", "Space Grey"],
    ),
    "Fashion": (
        ["Marlowe", "Alder & Moss", "Kestrel", "Sable", "Ruefield", "Urbanist", "Fenwick"],
        ["Black", "White", "Navy", "Olive", "Beige", "Burgundy", "Grey"],
    ),
    "Sports & Outdoors": (
        ["Altura", "Peakline", "Stridex", "Kinetic Lab", "Terravo", "Bluefin"],
        ["Black", "Blue", "Orange", "Lime", "Grey", "Purple"],
    ),
    "Beauty": (["Lumière", "Verdana", "Oura Skin", "Sora", "Clarity Lab", "Belle Rose"], []),
    "Baby & Kids": (["Tiny Atlas", "Little Oak", "Bambino", "Snugglo", "Pip & Pebble"], ["Multicolour", "Grey", "Blue", "Pink", "Beige"]),
    "Garden & DIY": (["Bauwerk", "Toolcraft", "Greenfield", "Harrow", "Meadow"], ["Green", "Black", "Orange", "Yellow", "Grey"]),
    "Pet Supplies": (["Whisker & Co", "Pawsome", "Fetchly", "Barkley"], ["Grey", "Brown", "Blue", "Red", "Beige"]),
}

_LEAVES = """
Kitchen > Cookware > Frying Pans | Frying Pan | skillet; fry pan | 35 | 20 cm; 24 cm; 28 cm; 32 cm | aluminium; stainless steel; cast iron | Non-Stick; Induction; Ceramic; Stone-Effect | searing, frying and sautéing | Lids; Spatulas; Saucepans
Kitchen > Cookware > Saucepans | Saucepan | pot; sauce pot | 40 | 16 cm; 18 cm; 20 cm; 24 cm | stainless steel; aluminium; copper | Induction; Non-Stick; Tri-Ply | sauces, soups and pasta | Lids; Ladles; Frying Pans
Kitchen > Cookware > Lids | Glass Lid | pan lid; pot lid | 14 | 20 cm; 24 cm; 28 cm; 32 cm | tempered glass; stainless steel | Vented; Universal; Steam-Release | keeping heat and moisture in | Frying Pans; Saucepans
Kitchen > Utensils > Spatulas | Spatula | turner; flipper | 9 | 28 cm; 32 cm | silicone; nylon; beechwood | Heat-Resistant; Slotted; Flexible | turning pancakes, fish and eggs | Frying Pans; Ladles
Kitchen > Utensils > Ladles | Ladle | soup ladle; serving spoon | 8 | 30 cm; 34 cm | stainless steel; silicone; nylon | Heat-Resistant; Pouring; Deep | serving soups and sauces | Saucepans; Spatulas
Kitchen > Knives > Chef's Knives | Chef's Knife | cooks knife; kitchen knife | 55 | 15 cm; 20 cm; 23 cm | carbon steel; stainless steel; Damascus steel | Forged; Japanese-Style; Full-Tang | slicing, dicing and chopping | Cutting Boards; Knife Sharpeners
Kitchen > Knives > Cutting Boards | Cutting Board | chopping board; chopping block | 25 | !small; medium; large | bamboo; oak; acacia wood; plastic | Reversible; Juice-Groove; Anti-Slip | prepping vegetables and meat | Chef's Knives
Kitchen > Knives > Knife Sharpeners | Knife Sharpener | sharpener; whetstone | 20 | !2-stage; 3-stage | ceramic; diamond; steel | Manual; Electric; Compact | keeping blades razor sharp | Chef's Knives
Kitchen > Small Appliances > Coffee Machines | Coffee Machine | coffee maker; espresso machine | 180 | 1.2 L; 1.5 L; 1.8 L | stainless steel; plastic | Bean-to-Cup; Espresso; Filter; Capsule | a perfect cup every morning | Coffee Grinders; Mugs
Kitchen > Small Appliances > Coffee Grinders | Coffee Grinder | grinder; coffee mill | 60 | 200 g; 250 g | stainless steel; ceramic | Burr; Electric; Manual | freshly ground beans | Coffee Machines; Mugs
Kitchen > Small Appliances > Kettles | Electric Kettle | kettle; water boiler | 45 | 1 L; 1.5 L; 1.7 L | stainless steel; glass; plastic | Cordless; Temperature-Control; Quiet-Boil | tea and instant noodles | Mugs
Kitchen > Tableware > Mugs | Mug Set | cups; coffee mugs | 22 | 4 pieces; 6 pieces | stoneware; porcelain; glass | Dishwasher-Safe; Double-Wall; Handmade | coffee and tea | Coffee Machines; Kettles
Home & Living > Furniture > Sofas | Sofa | couch; settee | 650 | 2-seater; 3-seater; corner | velvet; linen; leather; bouclé | Modular; Sleeper; Mid-Century | relaxed evenings | Cushions; Throws; Coffee Tables
Home & Living > Furniture > Coffee Tables | Coffee Table | side table; cocktail table | 180 | 90 cm; 110 cm; 120 cm | oak; walnut; marble; glass | Round; Nesting; Lift-Top | the centre of the living room | Sofas; Rugs
Home & Living > Furniture > Bookcases | Bookcase | bookshelf; shelving unit | 160 | 3-shelf; 5-shelf | oak; pine; metal | Ladder; Modular; Wall-Mounted | books and display pieces | Table Lamps
Home & Living > Textiles > Cushions | Cushion Cover | pillow cover; throw pillow | 18 | 45x45 cm; 50x50 cm; 40x60 cm | cotton; velvet; linen | Embroidered; Textured; Reversible | adding colour to a sofa | Sofas; Throws
Home & Living > Textiles > Throws | Throw Blanket | blanket; plaid | 45 | 130x170 cm; 150x200 cm | wool; cotton; fleece | Knitted; Chunky; Fringed | cosy nights in | Sofas; Cushions
Home & Living > Textiles > Rugs | Rug | carpet; area rug | 140 | 120x170 cm; 160x230 cm; 200x300 cm | wool; jute; polypropylene | Hand-Woven; Shaggy; Flatweave | warming up a floor | Coffee Tables
Home & Living > Lighting > Table Lamps | Table Lamp | desk lamp; bedside lamp | 55 | !small; medium | ceramic; brass; rattan | Dimmable; Touch; Adjustable | reading and ambient light | Light Bulbs; Bookcases
Home & Living > Lighting > Light Bulbs | LED Bulb Pack | light bulbs; led lamp | 14 | E27; E14; GU10 | glass | Warm-White; Smart; Dimmable | efficient lighting | Table Lamps
Home & Living > Bedding > Duvet Covers | Duvet Cover Set | bedding set; quilt cover | 60 | single; double; king | cotton; linen; sateen | Percale; Washed; Striped | a good night's sleep | Pillows
Home & Living > Bedding > Pillows | Pillow | bed pillow; head pillow | 30 | 40x80 cm; 50x70 cm | memory foam; down; microfibre | Orthopaedic; Cooling; Soft | sleeping well | Duvet Covers
Electronics > TV & Video > Televisions | Smart TV | tv; television | 600 | 43-inch; 50-inch; 55-inch; 65-inch | aluminium; plastic | 4K UHD; OLED; QLED | films, sport and gaming | Soundbars; TV Wall Mounts; HDMI Cables
Electronics > TV & Video > Soundbars | Soundbar | sound bar; tv speaker | 220 | !2.1; 3.1; 5.1 | plastic; aluminium; fabric | Dolby Atmos; Wireless-Subwoofer; Bluetooth | cinema sound at home | Televisions; HDMI Cables
Electronics > TV & Video > TV Wall Mounts | TV Wall Mount | tv bracket; wall bracket | 35 | 32-55 inch; 43-75 inch | steel | Tilting; Full-Motion; Slim | a tidy living room | Televisions
Electronics > Accessories > HDMI Cables | HDMI Cable | hdmi lead; hdmi cord | 12 | 1 m; 2 m; 3 m | braided nylon; PVC | 8K; High-Speed; Gold-Plated | connecting a screen | Televisions; Soundbars; Game Consoles
Electronics > Audio > Headphones | Wireless Headphones | headset; cans | 150 | !one size | plastic; aluminium; leather | Noise-Cancelling; Over-Ear; Foldable | music on the go | Headphone Cases
Electronics > Audio > Earbuds | True Wireless Earbuds | earbuds; in-ear headphones; earphones | 90 | !one size | plastic | Noise-Cancelling; Sport; Waterproof | workouts and commuting | Headphone Cases; Power Banks
Electronics > Audio > Headphone Cases | Headphone Case | carry case; pouch | 15 | !small; large | EVA; nylon; leather | Hard-Shell; Travel; Water-Resistant | protecting audio gear | Headphones; Earbuds
Electronics > Phones > Smartphones | Smartphone | mobile phone; cell phone; phone | 450 | 128 GB; 256 GB; 512 GB | glass; aluminium | 5G; Dual-SIM; Triple-Camera | staying connected | Phone Cases; Screen Protectors; Chargers
Electronics > Phones > Phone Cases | Phone Case | phone cover; case | 18 | 6.1-inch; 6.7-inch | silicone; TPU; leather | Shockproof; Slim; MagSafe-Compatible | protecting a phone | Smartphones; Screen Protectors
Electronics > Phones > Screen Protectors | Screen Protector | tempered glass protector; screen guard | 10 | 6.1-inch; 6.7-inch | tempered glass | Anti-Glare; Privacy; Bubble-Free | keeping a screen scratch-free | Phone Cases; Smartphones
Electronics > Phones > Chargers | USB-C Charger | charger; power adapter; plug | 25 | 20 W; 45 W; 65 W | plastic | Fast-Charging; GaN; Dual-Port | charging phones and laptops | Smartphones; Power Banks
Electronics > Phones > Power Banks | Power Bank | portable charger; battery pack | 35 | 10000 mAh; 20000 mAh | aluminium; plastic | Fast-Charging; Magnetic; Slim | power on the go | Smartphones; Chargers
Electronics > Gaming > Game Consoles | Game Console | console; gaming console | 420 | 512 GB; 1 TB | plastic | Digital-Edition; Handheld; 4K | gaming with friends | Controllers; HDMI Cables
Electronics > Gaming > Controllers | Wireless Controller | gamepad; joystick | 60 | !one size | plastic | Rechargeable; Pro; Ergonomic | long gaming sessions | Game Consoles
Fashion > Shoes > Sneakers | Sneakers | trainers; running shoes; kicks | 85 | !EU 38; EU 40; EU 42; EU 44; EU 46 | leather; mesh; suede; canvas | Low-Top; Retro; Lightweight | everyday wear | Socks; Shoe Care
Fashion > Shoes > Boots | Ankle Boots | boots; chelsea boots | 120 | !EU 37; EU 39; EU 41; EU 43 | leather; suede | Waterproof; Lined; Lace-Up | autumn and winter | Socks; Shoe Care
Fashion > Accessories > Socks | Socks Pack | socks; ankle socks | 12 | !S; M; L | cotton; merino wool; bamboo | Cushioned; No-Show; Crew | comfortable feet | Sneakers; Boots
Fashion > Accessories > Shoe Care | Shoe Care Kit | shoe cleaner; shoe polish | 16 | !one size | natural bristle; microfibre | Cleaning; Waterproofing; Travel | keeping shoes like new | Sneakers; Boots
Fashion > Clothing > Jackets | Jacket | coat; parka; anorak | 140 | !S; M; L; XL | nylon; wool; denim; cotton | Waterproof; Quilted; Hooded | staying warm and dry | Scarves; Jeans
Fashion > Clothing > Jeans | Jeans | denim; trousers | 65 | !W28; W30; W32; W34; W36 | denim; stretch denim | Slim-Fit; Straight-Leg; Relaxed | everyday wear | T-Shirts; Belts
Fashion > Clothing > T-Shirts | T-Shirt | tee; t shirt; top | 22 | !S; M; L; XL | organic cotton; cotton; linen | Crew-Neck; V-Neck; Oversized | layering and summer days | Jeans
Fashion > Accessories > Scarves | Scarf | shawl; muffler | 30 | !one size | wool; cashmere; cotton | Knitted; Checked; Oversized | cold days | Jackets
Fashion > Accessories > Belts | Belt | leather belt; waist belt | 35 | !85 cm; 95 cm; 105 cm | leather; canvas | Reversible; Braided; Classic | finishing an outfit | Jeans
Sports & Outdoors > Fitness > Yoga Mats | Yoga Mat | exercise mat; fitness mat | 35 | 4 mm; 6 mm; 8 mm | TPE; natural rubber; cork | Non-Slip; Eco; Extra-Thick | yoga and pilates | Resistance Bands; Water Bottles
Sports & Outdoors > Fitness > Dumbbells | Dumbbell Set | weights; dumbbells | 80 | 2x5 kg; 2x10 kg; 24 kg | cast iron; neoprene; steel | Adjustable; Hex; Rubber-Coated | strength training at home | Resistance Bands; Yoga Mats
Sports & Outdoors > Fitness > Resistance Bands | Resistance Band Set | exercise bands; fitness bands | 20 | !light; medium; heavy | latex; fabric | Loop; Tube; Anti-Snap | workouts anywhere | Yoga Mats; Dumbbells
Sports & Outdoors > Camping > Tents | Tent | camping tent; dome tent | 160 | 2-person; 3-person; 4-person | polyester; nylon | Waterproof; Pop-Up; Lightweight | weekends in the wild | Sleeping Bags; Camping Lanterns
Sports & Outdoors > Camping > Sleeping Bags | Sleeping Bag | sleeping sack; bedroll | 70 | !regular; long | down; synthetic | 3-Season; Mummy; Ultralight | warm nights outdoors | Tents; Camping Lanterns
Sports & Outdoors > Camping > Camping Lanterns | Camping Lantern | lantern; camp light | 25 | !small; large | plastic; aluminium | Rechargeable; Solar; Collapsible | light at the campsite | Tents
Sports & Outdoors > Cycling > Bike Helmets | Bike Helmet | cycling helmet; bicycle helmet | 70 | !S; M; L | polycarbonate; EPS | MIPS; Aero; Ventilated | safe rides | Bike Lights; Water Bottles
Sports & Outdoors > Cycling > Bike Lights | Bike Light Set | bicycle lights; cycle lights | 30 | 400 lm; 800 lm | aluminium; plastic | USB-Rechargeable; Waterproof; Smart | riding after dark | Bike Helmets
Sports & Outdoors > Hydration > Water Bottles | Water Bottle | drinks bottle; flask; sports bottle | 20 | 500 ml; 750 ml; 1 L | stainless steel; Tritan; glass | Insulated; Leak-Proof; Collapsible | staying hydrated | Yoga Mats; Bike Helmets
Beauty > Skincare > Moisturisers | Face Moisturiser | face cream; moisturizer; day cream | 28 | 50 ml; 75 ml | ingredient=hyaluronic acid; ceramides; niacinamide | Hydrating; Oil-Free; SPF 30 | soft, hydrated skin | Cleansers; Serums
Beauty > Skincare > Cleansers | Facial Cleanser | face wash; cleanser | 15 | 150 ml; 200 ml | ingredient=salicylic acid; green tea; ceramides | Foaming; Gentle; Gel | a fresh, clean face | Moisturisers; Serums
Beauty > Skincare > Serums | Face Serum | serum; essence | 32 | 30 ml; 50 ml | ingredient=vitamin C; retinol; hyaluronic acid; niacinamide | Brightening; Anti-Ageing; Hydrating | targeted care | Moisturisers; Cleansers
Beauty > Hair Care > Shampoo | Shampoo | hair wash; shampoo bar | 12 | 250 ml; 400 ml | ingredient=argan oil; keratin; tea tree | Sulphate-Free; Volumising; Repair | clean, healthy hair | Conditioner; Hair Dryers
Beauty > Hair Care > Conditioner | Conditioner | hair conditioner; hair balm | 12 | 250 ml; 400 ml | ingredient=argan oil; keratin; coconut oil | Leave-In; Smoothing; Repair | soft, detangled hair | Shampoo
Beauty > Hair Care > Hair Dryers | Hair Dryer | hairdryer; blow dryer | 70 | 1800 W; 2200 W | plastic | Ionic; Travel; Diffuser | quick styling | Shampoo; Conditioner
Baby & Kids > Toys > Building Blocks | Building Blocks Set | bricks; construction toy | 40 | 100 pieces; 250 pieces; 500 pieces | plastic; wood | Creative; Starter; STEM | hours of creative play | Puzzles
Baby & Kids > Toys > Puzzles | Jigsaw Puzzle | puzzle; jigsaw | 15 | 100 pieces; 500 pieces; 1000 pieces | cardboard; wood | Animal; Map; Glow-in-the-Dark | family evenings | Building Blocks
Baby & Kids > Baby Care > Strollers | Stroller | pushchair; pram; buggy | 380 | !one size | aluminium; steel | Lightweight; All-Terrain; Compact-Fold | walks in the park | Baby Carriers
Baby & Kids > Baby Care > Baby Carriers | Baby Carrier | baby sling; baby wrap | 80 | !one size | cotton; mesh | Ergonomic; Front-Facing; Breathable | keeping baby close | Strollers
Garden & DIY > Power Tools > Cordless Drills | Cordless Drill | drill; drill driver; screwdriver | 110 | 12 V; 18 V | plastic | Brushless; Hammer; Compact | shelves, furniture and DIY | Drill Bits; Tool Boxes
Garden & DIY > Power Tools > Drill Bits | Drill Bit Set | drill bits; bits | 25 | 15 pieces; 30 pieces; 50 pieces | HSS steel; titanium; cobalt | Masonry; Wood; Multi-Purpose | drilling any material | Cordless Drills
Garden & DIY > Hand Tools > Tool Boxes | Tool Box | toolbox; tool case | 45 | 16-inch; 20-inch | steel; plastic | Stackable; Lockable; Rolling | organising tools | Cordless Drills
Garden & DIY > Garden > Garden Hoses | Garden Hose | hose; hosepipe | 35 | 15 m; 25 m; 30 m | PVC; rubber | Expandable; Kink-Free; Reinforced | watering the garden | Hose Nozzles; Planters
Garden & DIY > Garden > Hose Nozzles | Hose Spray Nozzle | spray gun; hose nozzle | 12 | 7-pattern; 10-pattern | metal; plastic | Adjustable; Heavy-Duty; Ergonomic | gentle watering to jet cleaning | Garden Hoses
Garden & DIY > Garden > Planters | Planter | plant pot; flower pot | 30 | 20 cm; 30 cm; 40 cm | terracotta; ceramic; concrete | Self-Watering; Drainage; Hanging | plants indoors and out | Garden Hoses
Pet Supplies > Dogs > Dog Beds | Dog Bed | pet bed; dog basket | 55 | !S; M; L | polyester; memory foam | Orthopaedic; Washable; Calming | a comfortable nap | Dog Toys; Dog Leashes
Pet Supplies > Dogs > Dog Leashes | Dog Leash | dog lead; leash | 18 | 1.5 m; 2 m; 5 m | nylon; leather | Retractable; Reflective; Padded | daily walks | Dog Beds; Dog Toys
Pet Supplies > Dogs > Dog Toys | Dog Toy | chew toy; squeaky toy | 10 | !S; M; L | rubber; rope; plush | Durable; Squeaky; Treat-Dispensing | playtime | Dog Beds
Pet Supplies > Cats > Cat Scratchers | Cat Scratching Post | scratcher; cat tree | 45 | 60 cm; 90 cm; 150 cm | sisal; cardboard | Multi-Level; Compact; Wall-Mounted | happy claws | Cat Litter
Pet Supplies > Cats > Cat Litter | Cat Litter | litter; kitty litter | 15 | 5 L; 10 L; 20 L | clay; tofu; silica | Clumping; Odour-Control; Unscented | a fresh litter tray | Cat Scratchers
"""

_NO_COLOUR = {"Cat Litter", "Light Bulbs", "Drill Bits", "Screen Protectors", "Lids"}
_LINES = ["Ultimate", "Classic", "Pro", "Essential", "Signature", "Urban", "Eco", "Prime", "Studio", "Heritage", "Nova", "Flex", "Aero", "Pure", "Elite", "Select", "Active", "Loft"]
_TIER_PRICE = np.array([1.6, 1.0, 0.65])
_COUNTRIES = (["DE", "FR", "NL", "GB", "US", "ES", "IT", "AT", "BE", "PL"], [0.26, 0.14, 0.09, 0.13, 0.12, 0.07, 0.07, 0.05, 0.04, 0.03])
_SEGMENTS = (["bargain", "mainstream", "premium"], [0.3, 0.5, 0.2], [-0.35, 0.0, 0.35])
_AGES = (["18-24", "25-34", "35-44", "45-54", "55+"], [0.15, 0.3, 0.25, 0.17, 0.13])
_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]

_START = pd.Timestamp("2026-06-01", tz="UTC")  # the behaviour log covers _DAYS days from here
_DAYS = 120
_MS_DAY = 86_400_000

# Behaviour knobs (probabilities per visit unless said otherwise).
_MEAN_VISITS = 5.0  # items visited per session
_EVENTS_PER_VISIT = 3.0  # measured average, used to size the simulation before trimming
_K_SIM, _K_COMP, _K_CAND = 8, 6, 6
_SIM_WEIGHTS = 0.55 ** np.arange(_K_SIM)
_COMP_WEIGHTS = 0.6 ** np.arange(_K_COMP)


@dataclass
class _Leaf:
    path: str
    name: str
    top: str
    noun: str
    synonyms: list[str]
    price: float
    sizes: list[str]
    size_in_title: bool
    material_key: str
    materials: list[str]
    features: list[str]
    use: str
    complements: list[str]


def _parse_leaves() -> list[_Leaf]:
    leaves = []
    for line in _LEAVES.strip().splitlines():
        path, noun, syn, price, sizes, mats, feats, use, comps = [p.strip() for p in line.split("|")]
        split = lambda s: [x.strip() for x in s.split(";") if x.strip()]  # noqa: E731
        key = "material"
        if "=" in mats:
            key, mats = mats.split("=", 1)
        leaves.append(
            _Leaf(
                path=path,
                name=path.split(" > ")[-1],
                top=path.split(" > ")[0],
                noun=noun,
                synonyms=split(syn),
                price=float(price),
                sizes=split(sizes.lstrip("!")),
                size_in_title=not sizes.startswith("!"),
                material_key=key.strip(),
                materials=split(mats),
                features=split(feats),
                use=use,
                complements=split(comps),
            )
        )
    return leaves


def _cum_rows(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative distribution (last column exactly 1)."""
    c = np.cumsum(weights, axis=-1)
    c /= c[..., -1:]
    c[..., -1] = 1.0
    return c


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


# ---------------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------------


@dataclass
class _Catalogue:
    leaves: list[_Leaf]
    leaf: np.ndarray  # leaf index per item (items are ordered by leaf)
    leaf_lo: np.ndarray  # first item of each leaf
    leaf_n: np.ndarray  # items per leaf
    brand: np.ndarray  # global brand index per item
    brands: list[str]
    brand_tier: np.ndarray
    price: np.ndarray
    log_rel_price: np.ndarray  # log(price / leaf median)
    pop: np.ndarray
    pop_key: np.ndarray  # cumulative popularity within each leaf (0..1) plus 2 * leaf: sorted
    in_stock: np.ndarray
    ads: np.ndarray  # advertised item indexes
    ads_by_leaf: np.ndarray  # (leaves, max pool) advertised items each leaf's sponsored slots draw from
    ads_n: np.ndarray  # size of each leaf's pool (at least 1)
    sim: np.ndarray  # (items, K_SIM) similar items in the same leaf
    comp: np.ndarray  # (items, K_COMP) complementary items
    texts: list[dict]  # per item: noun, brand, colour, size, material, feature, line
    item_ids: np.ndarray  # external id per item index
    frame: pd.DataFrame


def _catalogue(rng: np.random.Generator, n_items: int) -> _Catalogue:
    all_leaves = _parse_leaves()
    n_leaves = min(len(all_leaves), max(1, n_items // 3))
    keep = np.sort(rng.choice(len(all_leaves), n_leaves, replace=False)) if n_leaves < len(all_leaves) else np.arange(len(all_leaves))
    leaves = [all_leaves[i] for i in keep]
    L = len(leaves)
    by_name = {lf.name: i for i, lf in enumerate(leaves)}

    # items per leaf: uneven but at least 3
    share = rng.lognormal(0.0, 0.45, L)
    leaf_n = 3 + rng.multinomial(n_items - 3 * L, share / share.sum())
    leaf_lo = np.r_[0, np.cumsum(leaf_n)[:-1]]
    leaf = np.repeat(np.arange(L), leaf_n)

    brands, brand_tier, brand_of_top, lines = [], [], {}, []
    for top, (names, _) in _TOPS.items():
        brand_of_top[top] = []
        for i, name in enumerate(names):
            brand_of_top[top].append(len(brands))
            brands.append(name)
            brand_tier.append(i % 3)
            lines.append([_LINES[j] for j in rng.choice(len(_LINES), 3, replace=False)])
    brand_tier = np.array(brand_tier)
    brand_pop = rng.lognormal(0, 0.5, len(brands))

    brand = np.zeros(n_items, np.int64)
    size_idx = np.zeros(n_items, np.int64)
    texts: list[dict] = []
    for li, lf in enumerate(leaves):
        pool = np.array(brand_of_top[lf.top])
        k = min(len(pool), 3 + int(rng.integers(0, 3)))
        maker = rng.choice(pool, k, replace=False)
        lo, n = leaf_lo[li], leaf_n[li]
        brand[lo : lo + n] = maker[_pick(rng, brand_pop[maker], n)]
        size_idx[lo : lo + n] = rng.integers(0, len(lf.sizes), n)
    u = rng.random((n_items, 8))
    colours_of = {top: c for top, (_, c) in _TOPS.items()}
    for i in range(n_items):
        lf = leaves[leaf[i]]
        colours = [] if lf.name in _NO_COLOUR else colours_of[lf.top]
        texts.append(
            {
                "noun": lf.noun,
                "brand": brands[brand[i]],
                "size": lf.sizes[size_idx[i]],
                "material": lf.materials[int(u[i, 0] * len(lf.materials))],
                "feature": lf.features[int(u[i, 1] * len(lf.features))],
                "colour": colours[int(u[i, 2] * len(colours))] if colours else None,
                "line": lines[brand[i]][int(u[i, 3] * 3)] if u[i, 4] < 0.6 else None,
            }
        )

    median = np.array([lf.price for lf in leaves])[leaf]
    n_sizes = np.array([len(lf.sizes) for lf in leaves])[leaf]
    size_factor = 1.0 + 0.5 * size_idx / np.maximum(n_sizes - 1, 1)
    raw = median * _TIER_PRICE[brand_tier[brand]] * size_factor / 1.25 * rng.lognormal(0, 0.22, n_items)
    price = np.where(raw < 200, np.floor(raw) + 0.99, np.round(raw / 10) * 10 - 0.01)
    price = np.maximum(price, 0.99).round(2)
    log_rel_price = np.log(price / median)

    pop = rng.lognormal(0, 1.0, n_items) * np.sqrt(brand_pop[brand])
    in_stock = rng.random(n_items) >= 0.04
    pop = np.where(in_stock, pop, pop * 0.3)
    pop_cum = np.zeros(n_items)
    for li in range(L):
        s = slice(leaf_lo[li], leaf_lo[li] + leaf_n[li])
        c = np.cumsum(pop[s])
        pop_cum[s] = c / c[-1]

    # advertised items: about 8%, favouring mid-popular items of brands with budget to spend
    n_ads = max(1, int(round(0.08 * n_items)))
    ads = np.sort(rng.choice(n_items, n_ads, replace=False, p=np.sqrt(pop) / np.sqrt(pop).sum()))
    # each leaf's sponsored pool: its own advertised items, else those of its top category, else all
    leaf_top = np.array([lf.top for lf in leaves], dtype=object)
    pools = []
    for li in range(L):
        mine = ads[leaf[ads] == li]
        if not len(mine):
            mine = ads[leaf_top[leaf[ads]] == leaf_top[li]]
        pools.append(mine if len(mine) else ads)
    ads_n = np.array([len(p) for p in pools])
    ads_by_leaf = np.zeros((L, ads_n.max()), np.int64)
    for li, pool in enumerate(pools):
        ads_by_leaf[li, : len(pool)] = pool

    # similar items: same leaf, close price, same brand, popular
    sim = np.zeros((n_items, _K_SIM), np.int64)
    comp = np.zeros((n_items, _K_COMP), np.int64)
    logpop = np.log(pop)
    size_names = {}
    size_code = np.array([size_names.setdefault(t["size"], len(size_names)) if t["size"] != "one size" else -1 for t in texts])
    size_code = np.where(size_code < 0, -1 - np.arange(n_items), size_code)  # "one size" matches nothing
    for li, lf in enumerate(leaves):
        members = np.arange(leaf_lo[li], leaf_lo[li] + leaf_n[li])
        score = (
            1.0 * (brand[members][:, None] == brand[members][None, :])
            - np.abs(log_rel_price[members][:, None] - log_rel_price[members][None, :]) / 0.3
            + 0.3 * logpop[members][None, :]
            + 0.3 * rng.gumbel(size=(len(members), len(members)))
        )
        np.fill_diagonal(score, -np.inf)
        order = np.argsort(-score, axis=1)[:, : len(members) - 1]
        sim[members] = members[order[:, np.arange(_K_SIM) % order.shape[1]]]  # tiny leaves cycle
        partners = [by_name[c] for c in lf.complements if c in by_name]
        if not partners:
            comp[members] = sim[members, :_K_COMP]
            continue
        cand = np.concatenate([np.arange(leaf_lo[p], leaf_lo[p] + leaf_n[p]) for p in partners])
        same_size = size_code[members][:, None] == size_code[cand][None, :]
        score = (
            1.5 * (brand[members][:, None] == brand[cand][None, :])
            + 1.0 * same_size
            - np.abs(log_rel_price[members][:, None] - log_rel_price[cand][None, :]) / 0.5
            + 0.5 * logpop[cand][None, :]
            + 0.3 * rng.gumbel(size=(len(members), len(cand)))
        )
        order = np.argsort(-score, axis=1)
        comp[members] = cand[order[:, np.arange(_K_COMP) % order.shape[1]]]

    item_ids = _ids("I", n_items, 5)[rng.permutation(n_items)]  # ids do not follow the category order
    frame = _item_frame(rng, leaves, leaf, texts, brand_tier[brand], price, in_stock, item_ids)
    return _Catalogue(
        leaves, leaf, leaf_lo, leaf_n, brand, brands, brand_tier, price, log_rel_price, pop, pop_cum + 2.0 * leaf,
        in_stock, ads, ads_by_leaf, ads_n, sim, comp, texts, item_ids, frame,
    )  # fmt: skip


_PROPER = {"Dolby", "Atmos", "Japanese", "Damascus", "Tritan"}
_AN_ACRONYMS = {"SPF", "OLED", "HDMI", "LED", "HSS", "EVA", "USB"}


def _lower_words(text: str) -> str:
    """Lowercase capitalised words ("Non-Stick" -> "non-stick") but keep acronyms and names."""
    parts = re.split(r"([ -])", text)
    return "".join(p.lower() if p[:1].isupper() and p[1:].islower() and p not in _PROPER else p for p in parts)


def _article(phrase: str) -> str:
    first = re.split(r"[ -]", phrase)[0]
    low = first.lower()
    if first[:1].isdigit():
        return "an" if low.startswith(("8", "11", "18")) else "a"
    if first in _AN_ACRONYMS:
        return "an" if first != "USB" else "a"
    if low.startswith(("uni", "use", "usb", "eu", "one")):
        return "a"
    return "an" if low[:1] in "aeiou" else "a"


def _is_plural(noun: str) -> bool:
    return noun.endswith("s") and not noun.endswith("ss")


def _item_frame(rng, leaves, leaf, texts, tier, price, in_stock, item_ids) -> pd.DataFrame:
    n_items = len(item_ids)
    u = rng.random((n_items, 8))
    titles, descriptions, attributes = [], [], []
    warranty = {0: "Premium build quality with a {y}-year warranty.", 1: "Backed by a {y}-year warranty.", 2: "Great value for everyday use."}
    for i in range(n_items):
        t, lf = texts[i], leaves[leaf[i]]
        size = t["size"] if lf.size_in_title and t["size"] != "one size" else None
        head = " ".join(x for x in (t["brand"], t["line"], t["feature"], t["noun"]) if x)
        if u[i, 0] < 0.75:
            title = head + (f" {size}" if size else "") + (f", {t['colour']}" if t["colour"] else "")
        else:
            tail = ", ".join(x for x in (size, t["colour"]) if x)
            title = head + (f" - {tail}" if tail else "")
        titles.append(title)
        noun = lf.synonyms[0] if (u[i, 1] < 0.4 and lf.synonyms) else _lower_words(t["noun"])
        feature = _lower_words(t["feature"])
        made = "made with" if lf.material_key != "material" else "made of"
        phrase = f"{feature} {noun}" if _is_plural(noun) else f"{_article(feature)} {feature} {noun}"
        sentences = [f"{phrase[:1].upper()}{phrase[1:]} from {t['brand']}, {made} {t['material']}, for {lf.use}."]
        if u[i, 2] < 0.6:
            bits = []
            if t["size"] != "one size":
                bits.append(f"size {t['size']}")
            if t["colour"]:
                bits.append(f"in {t['colour'].lower()}")
            if bits:
                sentences.append(f"This one comes {' and '.join(reversed(bits))}.".replace("comes size", "comes in size"))
        if u[i, 3] < 0.5:
            sentences.append(warranty[int(tier[i])].format(y=2 + int(u[i, 4] * 4)))
        descriptions.append(" ".join(sentences))
        attrs = {lf.material_key: t["material"]}
        if t["colour"]:
            attrs["colour"] = t["colour"]
        if t["size"] != "one size":
            attrs["size"] = t["size"]
        attrs["feature"] = t["feature"]
        attributes.append(attrs)

    end_ms = _START.value // 1_000_000 + _DAYS * _MS_DAY
    created = _START.value // 1_000_000 - rng.integers(14 * _MS_DAY, 900 * _MS_DAY, n_items)
    updated = created + (rng.random(n_items) * (end_ms - created)).astype(np.int64)
    return pd.DataFrame(
        {
            "item_id": pd.Series(item_ids, dtype=object),
            "title": pd.Series(titles, dtype=object),
            "description": pd.Series(descriptions, dtype=object),
            "category": pd.Series([leaves[j].path for j in leaf], dtype=object),
            "brand": pd.Series([t["brand"] for t in texts], dtype=object),
            "price": price.astype(float),
            "currency": pd.Series(["EUR"] * n_items, dtype=object),
            "image": pd.Series([None] * n_items, dtype=object),
            "attributes": pd.Series(attributes, dtype=object),
            "in_stock": in_stock.astype(bool),
            "created_at": pd.to_datetime(created, unit="ms", utc=True).as_unit("ns"),
            "updated_at": pd.to_datetime(updated, unit="ms", utc=True).as_unit("ns"),
        }
    )


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` + 1..n zero-padded to ``width`` digits (more if n needs them), as objects."""
    width = max(width, len(str(n)))
    return (prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)).to_numpy(dtype=object)


# ---------------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------------


@dataclass
class _Users:
    taste_a: np.ndarray  # (users, leaves) cumulative leaf distribution at the start of the window
    taste_b: np.ndarray  # ... and at its end (tastes drift from a to b)
    brand_aff: np.ndarray  # (users, brands)
    price_pref: np.ndarray  # log price offset the user prefers
    segment: np.ndarray
    country: np.ndarray
    age: np.ndarray


def _rank_rows(keys: np.ndarray) -> np.ndarray:
    """The rank of each entry within its row, 0 for the largest."""
    return np.argsort(np.argsort(-keys, axis=1, kind="stable"), axis=1, kind="stable")


def _users(rng: np.random.Generator, cat: _Catalogue, n_users: int) -> _Users:
    U, L = n_users, len(cat.leaves)
    tops = sorted({lf.top for lf in cat.leaves})
    top_of = np.array([tops.index(lf.top) for lf in cat.leaves])
    leaf_pop = rng.lognormal(0, 0.6, L)
    base = leaf_pop / leaf_pop.sum()
    # favourite leaves: two favourite top categories weigh four times; sampled without replacement
    fav_tops = np.argsort(-rng.gumbel(size=(U, len(tops))), axis=1)[:, : min(2, len(tops))]
    in_fav_top = (top_of[None, :, None] == fav_tops[:, None, :]).any(axis=2)
    n_fav = np.minimum(2 + rng.poisson(1.5, U), L)
    keys = np.log(base)[None, :] + np.log(4.0) * in_fav_top + rng.gumbel(size=(U, L))
    fav = _rank_rows(keys) < n_fav[:, None]
    weights = rng.gamma(1.0, size=(U, L)) * fav
    taste_a = 0.88 * weights / weights.sum(axis=1, keepdims=True)
    # drift: by the end of the window one or two favourites have given way to new interests
    n_move = np.minimum(n_fav, 1 + (rng.random(U) < 0.5))
    moved = fav & (_rank_rows(np.where(fav, rng.random((U, L)), -1.0)) < n_move[:, None])
    old = np.argsort(~moved, axis=1, kind="stable")[:, :2]  # the moved leaves first
    new = np.argsort(-(np.log(base)[None, :] + rng.gumbel(size=(U, L))), axis=1)[:, :2]
    rows = np.repeat(np.arange(U), 2)
    use = (np.arange(2)[None, :] < n_move[:, None]).ravel()
    taste_b = taste_a.copy()
    mass = taste_a[rows, old.ravel()] * use
    np.add.at(taste_b, (rows, old.ravel()), -mass)
    np.add.at(taste_b, (rows, new.ravel()), mass)
    taste_a += 0.12 * base
    taste_b = np.maximum(taste_b, 0) + 0.12 * base
    segment = _pick(rng, np.array(_SEGMENTS[1]), U)
    return _Users(
        taste_a=_cum_rows(taste_a),
        taste_b=_cum_rows(taste_b),
        brand_aff=rng.normal(0, 0.8, (U, len(cat.brands))),
        price_pref=np.array(_SEGMENTS[2])[segment] + rng.normal(0, 0.1, U),
        segment=segment,
        country=_pick(rng, np.array(_COUNTRIES[1]), U),
        age=_pick(rng, np.array(_AGES[1]), U),
    )


# ---------------------------------------------------------------------------------------------
# Behaviour: one walk per user over all their sessions, simulated for all users at once
# ---------------------------------------------------------------------------------------------

_ORIGIN_BROWSE, _ORIGIN_SEARCH, _ORIGIN_AD = 0, 1, 2
_N_RESULTS = 4  # result-list impressions logged per search; position 0 is sponsored


@dataclass
class _Visits:
    user: np.ndarray
    session: np.ndarray
    frac: np.ndarray  # time of the session as a fraction of the window
    is_last: np.ndarray
    item: np.ndarray
    origin: np.ndarray
    target: np.ndarray  # the item a search was for
    results: np.ndarray  # (visits, _N_RESULTS) result list of a search
    click_pos: np.ndarray
    engaged: np.ndarray
    cart: np.ndarray
    ad: np.ndarray  # sponsored item shown on the page (-1 none)
    ad_pos: np.ndarray
    ad_click: np.ndarray


def _taste_items(rng, cat: _Catalogue, users: _Users, u: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Items drawn from each user's current tastes: a leaf, then a popular item that fits."""
    n = len(u)
    late = rng.random(n) < frac
    cdf = np.where(late[:, None], users.taste_b[u], users.taste_a[u])
    leaf = np.minimum((cdf < rng.random(n)[:, None]).sum(axis=1), len(cat.leaves) - 1)
    lo, cnt = cat.leaf_lo[leaf], cat.leaf_n[leaf]
    r = rng.random((n, _K_CAND))
    cand = np.searchsorted(cat.pop_key, 2.0 * leaf[:, None] + r, side="left")  # popular items of the leaf
    cand = np.clip(cand, lo[:, None], (lo + cnt - 1)[:, None])
    fit = (
        users.brand_aff[u[:, None], cat.brand[cand]]
        - (cat.log_rel_price[cand] - users.price_pref[u][:, None]) ** 2 / (2 * 0.35**2)
        + rng.gumbel(size=cand.shape)
    )
    return cand[np.arange(n), np.argmax(fit, axis=1)]


def _pick_ads(rng, cat: _Catalogue, leaf: np.ndarray) -> np.ndarray:
    """A sponsored item for each leaf, from the leaf's pool of advertised items."""
    n = cat.ads_n[leaf]
    return cat.ads_by_leaf[leaf, np.minimum((rng.random(len(leaf)) * n).astype(np.int64), n - 1)]


def _choose(rng, weights: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(_cum_rows(weights), rng.random(n), side="right").clip(0, len(weights) - 1)


def _simulate(rng, cat: _Catalogue, users: _Users, n_sessions: int, progress: bool) -> _Visits:
    U = len(users.price_pref)
    # sessions per user (heavy-tailed activity), visits per session, session times as fractions
    activity = rng.lognormal(0, 0.8, U)
    if n_sessions >= U:
        n_sess = 1 + rng.multinomial(n_sessions - U, activity / activity.sum())
    else:
        n_sess = rng.multinomial(n_sessions, activity / activity.sum())
    S = int(n_sess.sum())
    s_user = np.repeat(np.arange(U), n_sess)
    s_frac = rng.random(S)
    order = np.lexsort((s_frac, s_user))
    s_frac = s_frac[order]
    p = 1.5 / (1.5 + _MEAN_VISITS - 1)
    s_len = np.minimum(1 + rng.negative_binomial(1.5, p, S), 40)
    V = int(s_len.sum())
    v_session = np.repeat(np.arange(S), s_len)
    v_start = np.r_[0, np.cumsum(s_len)[:-1]]
    v_k = np.arange(V) - np.repeat(v_start, s_len)
    is_start = v_k == 0
    is_last = v_k == np.repeat(s_len - 1, s_len)
    v_user = s_user[v_session]
    v_frac = s_frac[v_session]
    u_visits = np.bincount(v_user, minlength=U)
    u_off = np.r_[0, np.cumsum(u_visits)[:-1]]

    item = np.full(V, -1, np.int64)
    origin = np.zeros(V, np.int8)
    target = np.full(V, -1, np.int64)
    results = np.full((V, _N_RESULTS), -1, np.int64)
    click_pos = np.full(V, -1, np.int64)
    engaged = np.zeros(V, bool)
    cart = np.zeros(V, bool)
    ad = np.full(V, -1, np.int64)
    ad_pos = np.full(V, -1, np.int64)
    ad_click = np.zeros(V, bool)

    prev = np.full(U, -1, np.int64)
    pending = np.full(U, -1, np.int64)  # sponsored item clicked on the previous page
    by_load = np.argsort(-u_visits, kind="stable")
    loads = u_visits[by_load]
    steps = int(loads[0]) if U else 0
    leaf_of = cat.leaf
    for j in tqdm(range(steps), desc="demo shop: sessions", unit="step", disable=not progress, leave=False):
        n = int(np.searchsorted(-loads, -j, side="left"))  # users with more than j visits
        a = by_load[:n]
        v = u_off[a] + j
        start = is_start[v]
        pv = prev[a]
        has_prev = pv >= 0
        ps = np.maximum(pv, 0)
        pend = np.where(start, -1, pending[a])

        sim_c = cat.sim[ps, _choose(rng, _SIM_WEIGHTS, n)]
        comp_c = cat.comp[ps, _choose(rng, _COMP_WEIGHTS, n)]
        taste_c = _taste_items(rng, cat, users, a, v_frac[v])
        r = rng.random(n)
        # mode: 0 taste, 1 similar, 2 complementary
        mode = np.where(r < 0.47, 1, np.where(r < 0.70, 2, 0))
        carry = rng.random(n)
        mode = np.where(start, np.where(has_prev & (carry < 0.35), np.where(carry < 0.2, 2, 1), 0), mode)
        mode = np.where(has_prev, mode, 0)
        chosen = np.where(mode == 1, sim_c, np.where(mode == 2, comp_c, taste_c))
        p_search = np.where(start, 0.35, np.select([mode == 0, mode == 2], [0.45, 0.12], 0.03))
        search = (rng.random(n) < p_search) & (pend < 0)
        from_ad = pend >= 0

        # a search: results with the target among the organic positions, a sponsored slot first
        sv, st = v[search], chosen[search]
        if len(sv):
            m = len(sv)
            res = np.empty((m, _N_RESULTS), np.int64)
            res[:, 0] = _pick_ads(rng, cat, leaf_of[st])
            tpos = 1 + _choose(rng, np.array([0.6, 0.25, 0.15]), m)
            others = cat.sim[st, :2]
            rows = np.arange(m)
            res[rows, tpos] = st
            slots = np.array([[2, 3], [1, 3], [1, 2]])[tpos - 1]
            res[rows, slots[:, 0]] = others[rows, 0]
            res[rows, slots[:, 1]] = others[rows, 1]
            relevant = leaf_of[res[:, 0]] == leaf_of[st]
            rc = rng.random(m)
            p_ad = np.where(relevant, 0.16, 0.03)
            other = slots[rows, (rng.random(m) < 0.35).astype(np.int64)]
            pos = np.where(rc < p_ad, 0, np.where(rc < p_ad + 0.14, other, tpos))
            results[sv] = res
            target[sv] = st
            click_pos[sv] = pos
            chosen[search] = res[rows, pos]
        chosen = np.where(from_ad, pend, chosen)
        item[v] = chosen
        origin[v] = np.where(search, _ORIGIN_SEARCH, np.where(from_ad, _ORIGIN_AD, _ORIGIN_BROWSE))

        # engagement and cart: more likely for items that fit the user's brand taste
        fitness = 1 / (1 + np.exp(-users.brand_aff[a, cat.brand[chosen]]))
        eng = np.where(search, False, rng.random(n) < 0.22 + 0.3 * fitness)
        engaged[v] = eng
        p_cart = np.where(search | eng, 0.12 + 0.2 * fitness, 0.0) * cat.in_stock[chosen]
        cart[v] = rng.random(n) < p_cart

        # sponsored product on the page: same or complementary category; CTR by position, relevance
        show = ~search & (rng.random(n) < 0.3)
        sn = int(show.sum())
        if sn:
            here = chosen[show]
            same = rng.random(sn) < 0.6
            leaf = np.where(same, leaf_of[here], leaf_of[cat.comp[here, 0]])
            ads = _pick_ads(rng, cat, leaf)
            spos = rng.integers(0, 3, sn)
            rel = np.where(leaf_of[ads] == leaf_of[here], 1.0, np.where(leaf_of[ads] == leaf, 0.7, 0.25))
            ctr = np.array([0.16, 0.08, 0.04])[spos] * rel * (0.6 + 0.8 * fitness[show])
            clicked = (rng.random(sn) < ctr) & (ads != here)
            vs = v[show]
            ad[vs], ad_pos[vs], ad_click[vs] = ads, spos, clicked
            nxt = np.full(n, -1, np.int64)
            nxt[np.flatnonzero(show)[clicked]] = ads[clicked]
            pending[a] = np.where(is_last[v], -1, nxt)
        else:
            pending[a] = -1
        prev[a] = chosen

    return _Visits(
        user=v_user, session=v_session, frac=v_frac, is_last=is_last, item=item, origin=origin, target=target,
        results=results, click_pos=click_pos, engaged=engaged, cart=cart, ad=ad, ad_pos=ad_pos, ad_click=ad_click,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Queries typed as people type
# ---------------------------------------------------------------------------------------------

_UNITS = re.compile(r"(\d) (cm|mm|ml|l|m|w|v|gb|tb|kg|g|mah|lm)\b")
_Q_DRAWS = 16


def _neighbour(ch: str, r: float) -> str:
    for row in _KEYBOARD:
        i = row.find(ch)
        if i >= 0:
            options = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            return options[int(r * len(options))]
    return ch


def _typo(word: str, r1: float, r2: float, r3: float) -> str:
    i = 1 + int(r2 * (len(word) - 2))  # never the first letter: people get that right
    kind = int(r1 * 4)
    if kind == 0 and word[i + 1 : i + 2] and word[i + 1] != word[i]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swapped
    if kind == 1:
        return word[:i] + word[i + 1 :]  # dropped
    if kind == 2:
        return word[:i] + word[i] + word[i:]  # doubled
    return word[:i] + _neighbour(word[i], r3) + word[i + 1 :]  # neighbouring key


def _query(t: dict, lf: _Leaf, r: np.ndarray) -> str:
    """What someone looking for the item with texts ``t`` types into the search box."""
    noun = lf.synonyms[int(r[0] * len(lf.synonyms))] if (lf.synonyms and r[1] < 0.35) else t["noun"]
    noun = noun.lower()
    if r[2] < 0.12 and not noun.endswith("s"):
        noun += "s"
    words = []
    if r[3] < 0.35:
        words.append(t["brand"])
    if t["colour"] and r[4] < 0.22:
        words.append(t["colour"])
    if r[5] < 0.22:
        words.append(t["feature"])
    if r[6] < 0.12:
        words.append(t["material"])
    words.append(noun)
    if t["size"] != "one size" and r[7] < 0.18:
        words.append(t["size"])
    q = " ".join(words).lower()
    if r[8] < 0.5 and "-" in q:
        q = q.replace("-", " " if r[8] < 0.3 else "")
    if r[9] < 0.5:
        q = _UNITS.sub(r"\1\2", q)
    tokens = q.split()
    long = [i for i, w in enumerate(tokens) if len(w) >= 4 and w.isalpha()]
    if long and r[10] < 0.25:
        i = long[int(r[11] * len(long))]
        tokens[i] = _typo(tokens[i], r[12], r[13], r[14])
    if r[15] < 0.16 and len(tokens[-1]) >= 5 and tokens[-1].isalpha():
        tokens[-1] = tokens[-1][: max(3, int(len(tokens[-1]) * (0.4 + 0.4 * r[13])))]  # still typing
    return " ".join(tokens)


# ---------------------------------------------------------------------------------------------
# Events: visits become events, sessions get times, the log is trimmed to size
# ---------------------------------------------------------------------------------------------

_SLOT_TYPES = np.array(["search"] + ["impression"] * _N_RESULTS + ["click", "view", "click", "add_to_cart", "impression", "click", "purchase"], dtype=object)
_S_SEARCH, _S_RESULT, _S_RCLICK, _S_VIEW, _S_ENGAGE, _S_CART, _S_AD, _S_ADCLICK, _S_BUY = 0, 1, 5, 6, 7, 8, 9, 10, 11
# per slot: minimum and mean extra time (ms) since the previous event
_GAP_MIN = np.array([3000] + [20] * _N_RESULTS + [1500, 2000, 2000, 2000, 500, 1000, 30000], dtype=float)
_GAP_MEAN = np.array([15000] + [40] * _N_RESULTS + [6000, 25000, 15000, 20000, 4000, 6000, 90000], dtype=float)


def _events(rng, cat: _Catalogue, users: _Users, vis: _Visits, n_events: int, anonymous_share: float) -> tuple[pd.DataFrame, np.ndarray]:
    V = len(vis.item)
    S = int(vis.session.max()) + 1 if V else 0
    search = vis.origin == _ORIGIN_SEARCH
    present = np.zeros((V, _S_BUY), bool)
    present[:, _S_SEARCH : _S_RCLICK + 1] = search[:, None]
    present[:, _S_VIEW] = True
    present[:, _S_ENGAGE] = vis.engaged
    present[:, _S_CART] = vis.cart
    present[:, _S_AD] = vis.ad >= 0
    present[:, _S_ADCLICK] = vis.ad_click
    checkout = rng.random(S) < 0.6
    bought = vis.cart & checkout[vis.session] & (rng.random(V) < 0.9)

    # trim whole sessions, chosen at random, to the number of events asked for
    per_session = np.bincount(vis.session, weights=present.sum(axis=1) + bought, minlength=S)
    excess = per_session.sum() - n_events
    keep_s = np.ones(S, bool)
    if excess > 0:
        drop_order = rng.permutation(S)
        n_drop = min(int(np.searchsorted(np.cumsum(per_session[drop_order]), excess, side="left")) + 1, S - 1)
        keep_s[drop_order[:n_drop]] = False
    kept = keep_s[vis.session]
    present &= kept[:, None]
    bought &= kept

    v_e, slot = np.nonzero(present)
    s_last = np.zeros(S, np.int64)
    np.maximum.at(s_last, vis.session, np.arange(V))
    pv = np.flatnonzero(bought)
    key_visit = np.r_[v_e, s_last[vis.session[pv]]]
    key_slot = np.r_[slot, np.full(len(pv), _S_BUY)]
    key_sub = np.r_[np.zeros(len(v_e), np.int64), pv]
    item_visit = np.r_[v_e, pv]  # the visit whose item the event is about
    order = np.lexsort((key_sub, key_slot, key_visit))
    ev_visit, ev_slot, ev_src = key_visit[order], key_slot[order], item_visit[order]
    ev_session = vis.session[ev_visit]
    n = len(order)

    items = vis.item[ev_src].copy()
    is_result = (ev_slot >= _S_RESULT) & (ev_slot < _S_RCLICK)
    items[is_result] = vis.results[ev_visit[is_result], ev_slot[is_result] - _S_RESULT]
    is_ad = (ev_slot == _S_AD) | (ev_slot == _S_ADCLICK)
    items[is_ad] = vis.ad[ev_visit[is_ad]]
    items[ev_slot == _S_SEARCH] = -1
    position = np.full(n, -1, np.int64)
    position[is_result] = ev_slot[is_result] - _S_RESULT
    rclick = ev_slot == _S_RCLICK
    position[rclick] = vis.click_pos[ev_visit[rclick]]
    position[is_ad] = vis.ad_pos[ev_visit[is_ad]]
    sponsored = (ev_slot == _S_RESULT) | (rclick & (position == 0)) | is_ad

    # times: gaps inside sessions, sessions of a user spread over the window without overlap
    gap = _GAP_MIN[ev_slot] + rng.exponential(1.0, n) * _GAP_MEAN[ev_slot]
    after_click = (ev_slot == _S_VIEW) & (vis.origin[ev_visit] == _ORIGIN_SEARCH)
    gap[after_click] = 300 + rng.exponential(1200, int(after_click.sum()))
    next_buy = (ev_slot == _S_BUY) & np.r_[False, ev_slot[:-1] == _S_BUY]
    gap[next_buy] = 5 + rng.exponential(20, int(next_buy.sum()))
    first = np.r_[True, ev_session[1:] != ev_session[:-1]]
    gap = np.maximum(np.ceil(gap), 1).astype(np.int64)
    gap[first] = 0
    csum = np.cumsum(gap)
    first_idx = np.flatnonzero(first)
    offset = csum - np.repeat(csum[first_idx], np.diff(np.r_[first_idx, n]))
    duration = np.zeros(S, np.int64)
    np.maximum.at(duration, ev_session, offset)

    U = len(users.price_pref)
    s_user = np.zeros(S, np.int64)
    s_user[vis.session] = vis.user
    s_frac = np.zeros(S)
    s_frac[vis.session] = vis.frac
    need = np.where(keep_s, duration + 30 * 60_000, 0)  # a session, then at least half an hour off
    window = _DAYS * _MS_DAY
    spare = np.maximum(window - np.bincount(s_user, weights=need, minlength=U).astype(np.int64), 0)
    before = np.cumsum(need) - need
    user_first = np.r_[0, np.flatnonzero(np.diff(s_user)) + 1]  # sessions are grouped by user
    before -= np.repeat(before[user_first], np.diff(np.r_[user_first, S]))
    s_start = _START.value // 1_000_000 + (spare[s_user] * s_frac).astype(np.int64) + before
    ts = s_start[ev_session] + offset

    # ids: sessions numbered by start time, events by time
    s_rank = np.full(S, -1, np.int64)
    kept_s = np.flatnonzero(keep_s)
    s_rank[kept_s[np.argsort(s_start[kept_s], kind="stable")]] = np.arange(len(kept_s))
    final = np.argsort(ts, kind="stable")
    ev_session, ev_visit, ev_slot = ev_session[final], ev_visit[final], ev_slot[final]
    items, position, sponsored, ts = items[final], position[final], sponsored[final], ts[final]

    queries = np.full(n, None, dtype=object)
    qrows = np.flatnonzero(ev_slot == _S_SEARCH)
    draws = rng.random((len(qrows), _Q_DRAWS))
    for k, row in enumerate(qrows):
        t = vis.target[ev_visit[row]]
        queries[row] = _query(cat.texts[t], cat.leaves[cat.leaf[t]], draws[k])

    user_ids = _ids("U", U, 4)
    event_users = user_ids[s_user[ev_session]]
    if anonymous_share > 0:  # sessions of people who did not log in: only the session id is known
        logged_out = rng.random(S) < anonymous_share
        event_users[logged_out[ev_session]] = None
    session_ids = _ids("S", max(len(kept_s), 1), 6)
    item_ids = np.r_[cat.item_ids, np.array([None], dtype=object)]  # index -1 is "no item"
    events = pd.DataFrame(
        {
            "event_id": pd.Series(_ids("E", n, 7), dtype=object),
            "user_id": pd.Series(event_users, dtype=object),
            "session_id": pd.Series(session_ids[s_rank[ev_session]], dtype=object),
            "item_id": pd.Series(item_ids[items], dtype=object),
            "type": pd.Series(_SLOT_TYPES[ev_slot], dtype=object),
            "ts": pd.to_datetime(ts, unit="ms", utc=True).as_unit("ns"),
            "query": pd.Series(queries, dtype=object),
            "position": pd.Series(np.where(position >= 0, position.astype(object), None), dtype=object),
            "sponsored": sponsored.astype(bool),
        }
    )
    first_seen = np.full(U, np.iinfo(np.int64).max)
    np.minimum.at(first_seen, s_user[kept_s], s_start[kept_s])
    return events, first_seen


def _user_frame(rng, users: _Users, first_seen: np.ndarray) -> pd.DataFrame:
    U = len(first_seen)
    never = first_seen == np.iinfo(np.int64).max
    start = _START.value // 1_000_000
    created = np.where(
        never,
        start + ((rng.random(U) * (_DAYS + 365) - 365) * _MS_DAY).astype(np.int64),
        first_seen - ((1 + rng.exponential(120, U)) * _MS_DAY).astype(np.int64),
    )
    countries, segments, ages = _COUNTRIES[0], _SEGMENTS[0], _AGES[0]
    newsletter = rng.random(U) < 0.35
    attributes = [
        {"country": countries[users.country[u]], "segment": segments[users.segment[u]], "age_band": ages[users.age[u]], "newsletter": bool(newsletter[u])}
        for u in range(U)
    ]
    return pd.DataFrame(
        {
            "user_id": pd.Series(_ids("U", U, 4), dtype=object),
            "attributes": pd.Series(attributes, dtype=object),
            "created_at": pd.to_datetime(created, unit="ms", utc=True).as_unit("ns"),
        }
    )


def generate(
    n_items: int = 5000,
    n_users: int = 2000,
    n_events: int = 150_000,
    seed: int = 0,
    progress: bool = False,
    *,
    anonymous_share: float = 0.0,
) -> DemoShop:
    """A synthetic shop, the same for the same arguments.

    ``n_items`` and ``n_users`` are exact; the log holds whole sessions and ends just below
    ``n_events`` (within about one session; never above it unless one session alone is). ``progress`` shows a progress bar while sessions
    are simulated. ``anonymous_share`` of the sessions (0 by default) are logged without a
    ``user_id``, as if the person had not logged in: they keep their ``session_id``."""
    if n_items < 20:
        raise ValueError(f"n_items must be at least 20, got {n_items}")
    if n_users < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")
    if n_events < 1:
        raise ValueError(f"n_events must be at least 1, got {n_events}")
    if not 0.0 <= anonymous_share <= 1.0:
        raise ValueError(f"anonymous_share must lie in [0, 1], got {anonymous_share}")
    rng = np.random.default_rng(seed)
    cat = _catalogue(rng, n_items)
    people = _users(rng, cat, n_users)
    n_sessions = max(1, math.ceil(n_events * 1.1 / (_MEAN_VISITS * _EVENTS_PER_VISIT)))
    visits = _simulate(rng, cat, people, n_sessions, progress)
    events, first_seen = _events(rng, cat, people, visits, n_events, anonymous_share)
    users = _user_frame(rng, people, first_seen)
    items = cat.frame.sort_values("item_id", ignore_index=True)
    return DemoShop(items=items[ITEM_COLUMNS], users=users[USER_COLUMNS], events=events[EVENT_COLUMNS])
