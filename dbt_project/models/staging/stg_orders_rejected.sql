with

source as (

    select * from {{ source('raw', 'orders_rejected') }}

),

renamed as (

    select
        cast(source_row_number as bigint) as source_row_number,
        cast(source_line_number as bigint) as source_line_number,
        source_line

    from source

)

select * from renamed
