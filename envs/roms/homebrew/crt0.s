; Startup, interrupt handlers, iNES header and CHR tiles of the dreamfleet homebrew NES game.
; Reset clears RAM, waits for the PPU, sets up the cc65 C stack and calls main(). The NMI handler
; copies shadow OAM ($0200) by DMA and applies the scroll that main() left in $0311/$0312, then
; bumps the frame counter at $0313 that main() waits on.

.export __STARTUP__ : absolute = 1
.import _main, copydata
.importzp sp

PPUCTRL   = $2000
PPUMASK   = $2001
PPUSTATUS = $2002
OAMADDR   = $2003
PPUSCROLL = $2005
OAMDMA    = $4014
SCROLL_X  = $0311
PPU_CTRL_SHADOW = $0312
NMI_COUNT = $0313

.segment "HEADER"
    .byte "NES", $1A
    .byte 1          ; 16 KB PRG
    .byte 1          ; 8 KB CHR
    .byte $01        ; mapper 0, vertical mirroring (two screens side by side)
    .byte $00
    .res 8, 0

.segment "STARTUP"
reset:
    sei
    cld
    ldx #$40
    stx $4017        ; no APU frame IRQ
    ldx #$FF
    txs
    inx
    stx PPUCTRL
    stx PPUMASK
    stx $4010
    bit PPUSTATUS
@vblank1:
    bit PPUSTATUS
    bpl @vblank1
    lda #0
    tax
@clear:
    sta $0000,x
    sta $0100,x
    sta $0300,x
    sta $0400,x
    sta $0500,x
    sta $0600,x
    sta $0700,x
    inx
    bne @clear
    lda #$FF
@hide:
    sta $0200,x      ; every sprite starts below the screen
    inx
    bne @hide
@vblank2:
    bit PPUSTATUS
    bpl @vblank2
    lda #<$0800
    sta sp
    lda #>$0800
    sta sp+1
    jsr copydata
    jsr _main
@halt:
    jmp @halt

nmi:
    pha
    txa
    pha
    tya
    pha
    lda #0
    sta OAMADDR
    lda #$02
    sta OAMDMA
    lda SCROLL_X
    sta PPUSCROLL
    lda #0
    sta PPUSCROLL
    lda PPU_CTRL_SHADOW
    sta PPUCTRL
    inc NMI_COUNT
    pla
    tay
    pla
    tax
    pla
irq:
    rti

.segment "VECTORS"
    .word nmi, reset, irq

; 8x8 tiles, two bit planes each (plane 0 then plane 1).
.segment "CHARS"
; 0: empty
    .res 16, 0
; 1: ground brick (colour 1 body, colour 3 mortar)
    .byte $FF,$80,$80,$80,$FF,$08,$08,$08
    .byte $FF,$FF,$FF,$FF,$FF,$FF,$FF,$FF
; 2: flag pole
    .byte $18,$18,$18,$18,$18,$18,$18,$18
    .byte $18,$18,$18,$18,$18,$18,$18,$18
; 3: flag (pennant on the pole)
    .byte $18,$1F,$1F,$1F,$1F,$18,$18,$18
    .byte $18,$18,$18,$18,$18,$18,$18,$18
; 4: player (head, body, legs)
    .byte $3C,$3C,$18,$7E,$18,$18,$24,$66
    .byte $3C,$24,$00,$7E,$18,$18,$24,$66
; 5: enemy (spiky blob)
    .byte $24,$7E,$DB,$FF,$FF,$7E,$5A,$81
    .byte $00,$3C,$24,$7E,$7E,$3C,$00,$00
; 6: grass top of the ground
    .byte $00,$55,$FF,$FF,$FF,$80,$80,$80
    .byte $FF,$AA,$00,$FF,$FF,$FF,$FF,$FF
    .res $2000 - 7 * 16, 0
