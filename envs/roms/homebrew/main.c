/* dreamfleet homebrew NES game: one two-screen side-scrolling level. The player runs right,
 * jumps over pits and a patrolling enemy and reaches the flag. main() draws the level once with
 * rendering off, then runs one game update per video frame: read the pad, move, collide, write
 * shadow OAM and the scroll for the NMI handler (crt0.s). All state the dreamfleet env reads sits
 * at the fixed RAM addresses documented in README.md. Fully deterministic: no RNG at all. */

#define RAM8(a) (*(volatile unsigned char*)(a))
#define RAM16(a) (*(volatile unsigned int*)(a))

/* ---- Fixed-address game state (README.md documents each address) ---- */
#define PLAYER_X RAM16(0x0300) /* level pixel of the player's left edge, 0..504 */
#define PLAYER_Y RAM8(0x0302)  /* screen pixel of the player's top edge */
#define LIVES RAM8(0x0303)
#define SCORE RAM16(0x0304)
#define LEVEL_DONE RAM8(0x0306) /* 1 once the flag is reached */
#define GAME_OVER RAM8(0x0307)  /* 1 once the last life is lost */
#define DEATHS RAM8(0x0308)     /* lives lost so far */
#define ENEMY_X RAM16(0x0309)
#define PLAYER_STATE RAM8(0x030B) /* 0 on ground, 1 in the air, 2 dying */
#define GAME_MODE RAM8(0x030C)    /* 0 title, 1 playing, 2 level done, 3 game over */
#define MAX_COLUMN RAM8(0x030D)   /* furthest 8-pixel column reached (score progress) */
#define PAD RAM8(0x030E)          /* buttons read this frame */
#define FRAMES RAM16(0x0314)      /* game frames since the level started */
/* shared with the NMI handler in crt0.s */
#define SCROLL_X RAM8(0x0311)
#define PPU_CTRL_SHADOW RAM8(0x0312)
#define NMI_COUNT RAM8(0x0313)

#define PPUCTRL RAM8(0x2000)
#define PPUMASK RAM8(0x2001)
#define PPUSTATUS RAM8(0x2002)
#define PPUADDR RAM8(0x2006)
#define PPUDATA RAM8(0x2007)
#define JOY1 RAM8(0x4016)
#define OAM ((volatile unsigned char*)0x0200)

#define BTN_A 0x80
#define BTN_B 0x40
#define BTN_START 0x10
#define BTN_LEFT 0x02
#define BTN_RIGHT 0x01

#define TILE_GRASS 6
#define TILE_GROUND 1
#define TILE_POLE 2
#define TILE_FLAG 3
#define TILE_PLAYER 4
#define TILE_ENEMY 5

#define LEVEL_COLUMNS 64
#define GROUND_TOP 192 /* y of the ground surface */
#define STAND_Y 184    /* player y when standing on the ground */
#define START_X 16
#define FLAG_X 464 /* reaching this x finishes the level */
#define FLAG_COLUMN 59
#define ENEMY_MIN_X 240
#define ENEMY_MAX_X 320
#define JUMP_SPEED 56 /* 1/16 px per frame */
#define GRAVITY 3
#define MAX_FALL 64
#define DEATH_Y 224
#define DYING_FRAMES 40
#define START_LIVES 3

/* 1 = ground, 0 = pit */
static const unsigned char kGround[LEVEL_COLUMNS] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, /* pit at columns 12-13 */
    1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, /* pit at columns 24-26 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, /* pit at columns 44-45 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

static const unsigned char kPalette[32] = {
    0x21, 0x17, 0x28, 0x0F, 0x21, 0x17, 0x28, 0x0F, 0x21, 0x17, 0x28, 0x0F, 0x21, 0x17, 0x28, 0x0F,
    0x21, 0x16, 0x27, 0x0F, 0x21, 0x1A, 0x2A, 0x0F, 0x21, 0x16, 0x27, 0x0F, 0x21, 0x16, 0x27, 0x0F};

static int y16; /* player y in 1/16 pixel */
static int vy;  /* 1/16 pixel per frame, positive = down */
static unsigned char enemy_dir;
static unsigned char dying_timer;

static void WaitFrame(void) {
  unsigned char n = NMI_COUNT;
  while (NMI_COUNT == n) {
  }
}

static void ReadPad(void) {
  unsigned char i, pad = 0;
  JOY1 = 1;
  JOY1 = 0;
  for (i = 0; i < 8; ++i) pad = (pad << 1) | (JOY1 & 1);
  PAD = pad;
}

static void DrawLevel(void) {
  unsigned char i, col, row, table, tile;
  PPUADDR = 0x3F;
  PPUADDR = 0x00;
  for (i = 0; i < 32; ++i) PPUDATA = kPalette[i];
  for (table = 0; table < 2; ++table) {
    PPUADDR = table ? 0x24 : 0x20;
    PPUADDR = 0x00;
    for (row = 0; row < 30; ++row) {
      for (i = 0; i < 32; ++i) {
        col = (table << 5) | i;
        tile = 0;
        if (row >= GROUND_TOP / 8 && kGround[col])
          tile = row == GROUND_TOP / 8 ? TILE_GRASS : TILE_GROUND;
        if (col == FLAG_COLUMN && row >= 16 && row < GROUND_TOP / 8)
          tile = row == 16 ? TILE_FLAG : TILE_POLE;
        PPUDATA = tile;
      }
    }
    for (i = 0; i < 64; ++i) PPUDATA = 0; /* attributes: palette 0 everywhere */
  }
}

static void StartLevel(void) {
  PLAYER_X = START_X;
  PLAYER_Y = STAND_Y;
  y16 = STAND_Y * 16;
  vy = 0;
  PLAYER_STATE = 0;
  ENEMY_X = ENEMY_MIN_X;
  enemy_dir = 0;
}

static unsigned char GroundUnder(unsigned int x) {
  return kGround[((x + 2) >> 3) & 63] | kGround[((x + 5) >> 3) & 63];
}

static void Die(void) {
  PLAYER_STATE = 2;
  dying_timer = DYING_FRAMES;
  --LIVES;
  ++DEATHS;
}

static void UpdatePlayer(void) {
  unsigned int x = PLAYER_X;
  unsigned char pad = PAD, speed, feet_before, feet_after;
  unsigned int ex;

  speed = (pad & BTN_B) ? 2 : 1;
  if (PLAYER_Y <= STAND_Y) { /* below the surface (in a pit) the player can only fall */
    if (pad & BTN_RIGHT) {
      x += speed;
      if (x > 504) x = 504;
    } else if (pad & BTN_LEFT) {
      x = x > 8 + speed ? x - speed : 8;
    }
  }
  PLAYER_X = x;

  if (PLAYER_STATE == 0) {
    if (!GroundUnder(x)) {
      PLAYER_STATE = 1; /* walked off an edge */
    } else if (pad & BTN_A) {
      vy = -JUMP_SPEED;
      PLAYER_STATE = 1;
    }
  }
  if (PLAYER_STATE == 1) {
    feet_before = PLAYER_Y + 8;
    vy += GRAVITY;
    if (vy > MAX_FALL) vy = MAX_FALL;
    y16 += vy;
    PLAYER_Y = (unsigned char)(y16 >> 4);
    feet_after = PLAYER_Y + 8;
    if (vy > 0 && feet_before <= GROUND_TOP && feet_after >= GROUND_TOP && GroundUnder(x)) {
      PLAYER_Y = STAND_Y;
      y16 = STAND_Y * 16;
      vy = 0;
      PLAYER_STATE = 0;
    } else if (PLAYER_Y >= DEATH_Y) {
      Die();
      return;
    }
  }

  ex = ENEMY_X;
  if (x + 6 > ex && x < ex + 6 && PLAYER_Y + 7 > STAND_Y) {
    Die();
    return;
  }

  if ((unsigned char)(x >> 3) > MAX_COLUMN) {
    SCORE += 10 * ((unsigned char)(x >> 3) - MAX_COLUMN);
    MAX_COLUMN = (unsigned char)(x >> 3);
  }
  if (x >= FLAG_X) {
    SCORE += 1000;
    LEVEL_DONE = 1;
    GAME_MODE = 2;
  }
}

static void UpdateEnemy(void) {
  if (enemy_dir) {
    if (--ENEMY_X <= ENEMY_MIN_X) enemy_dir = 0;
  } else {
    if (++ENEMY_X >= ENEMY_MAX_X) enemy_dir = 1;
  }
}

static void UpdateDying(void) {
  if (--dying_timer) return;
  if (LIVES == 0) {
    GAME_OVER = 1;
    GAME_MODE = 3;
  } else {
    StartLevel();
  }
}

/* Camera follows the player; shadow OAM and scroll are picked up by the next NMI. */
static void Render(void) {
  unsigned int x = PLAYER_X, camera, ex;
  camera = x > 112 ? x - 112 : 0;
  if (camera > 256) camera = 256;
  SCROLL_X = (unsigned char)camera;
  PPU_CTRL_SHADOW = 0x80 | (unsigned char)(camera >> 8);

  OAM[0] = (PLAYER_STATE == 2 && (dying_timer & 4)) ? 0xFF : PLAYER_Y - 1;
  OAM[1] = TILE_PLAYER;
  OAM[2] = PLAYER_STATE == 2 ? 0x80 : 0x00; /* upside down while dying */
  OAM[3] = (unsigned char)(x - camera);

  ex = ENEMY_X;
  if (ex >= camera && ex < camera + 248) {
    OAM[4] = STAND_Y - 1;
    OAM[6] = 0x01;
    OAM[7] = (unsigned char)(ex - camera);
  } else {
    OAM[4] = 0xFF;
  }
  OAM[5] = TILE_ENEMY;
}

void main(void) {
  DrawLevel();
  LIVES = START_LIVES;
  GAME_MODE = 0;
  StartLevel();
  Render();
  PPU_CTRL_SHADOW = 0x80;
  PPUCTRL = 0x80; /* NMI on, both pattern tables at $0000 */
  WaitFrame();
  PPUMASK = 0x1E; /* show background and sprites, including the left 8 pixels */
  for (;;) {
    WaitFrame();
    ReadPad();
    if (GAME_MODE == 0) {
      if (PAD & BTN_START) GAME_MODE = 1;
    } else if (GAME_MODE == 1) {
      ++FRAMES;
      if (PLAYER_STATE == 2) {
        UpdateDying();
      } else {
        UpdatePlayer();
        UpdateEnemy();
      }
    }
    Render();
  }
}
